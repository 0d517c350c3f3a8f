"""The dashboards as files: generated from code, schema-valid, every panel with a data source variable, a unit and
a description, rates over $__rate_interval."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from grafana_foundation_sdk.models.dashboard import Dashboard

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
SCHEMA = json.loads((Path(__file__).parent / "dashboard.schema.json").read_text())


def load(path):
    return json.loads(path.read_text())


def panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_there_are_the_three_dashboards():
    assert [p.name for p in DASHBOARDS] == ["sollol-exporter.json", "sollol-inference.json", "sollol-overview.json"]


def test_committed_json_is_what_the_generator_writes():
    result = subprocess.run([sys.executable, str(ROOT / "grafana" / "generate.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_schema(path):
    dashboard = load(path)
    jsonschema.validate(dashboard, SCHEMA)
    parsed = Dashboard.from_json(dashboard)  # the SDK's own model reads it back
    assert parsed.uid == dashboard["uid"] and len(parsed.panels) == len(dashboard["panels"])


def test_uids_are_unique_and_fixed():
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    assert set(uids) == {"sollol-overview", "sollol-inference", "sollol-exporter"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_is_complete(path):
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = set()
    for panel in panels(dashboard):
        assert panel["id"] not in ids
        ids.add(panel["id"])
        assert panel["description"].strip(), panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        uid = panel["datasource"]["uid"]
        assert uid.startswith("${") and uid[2:-1] in variables, panel["title"]
        if panel["type"] != "alertlist":
            assert panel.get("targets"), panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_no_import_placeholders_and_rates_use_the_rate_interval(path):
    text = path.read_text()
    assert "${DS_" not in text
    for panel in panels(load(path)):
        for target in panel.get("targets", []):
            for window in re.findall(r"(?:rate|increase|irate)\([^\[]*\[([^\]]+)\]", target["expr"]):
                assert window == "$__rate_interval", (panel["title"], target["expr"])


def test_cluster_dashboards_filter_by_coordinator_backend_and_node():
    for name in ("sollol-overview.json", "sollol-inference.json"):
        dashboard = load(ROOT / "grafana" / "dashboards" / name)
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        for variable in ("coordinator", "backend", "node"):
            assert variables[variable]["type"] == "query" and variables[variable]["includeAll"]
            used = [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if f"${variable}" in t["expr"]]
            assert used, f"{name}: ${variable} filters nothing"
