"""The dashboards as files: generated from code, schema-valid, every panel and annotation with a data source
variable, every panel with a unit and a description, rates over $__rate_interval, filter variables applied."""

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


def test_there_are_the_four_dashboards():
    assert [p.name for p in DASHBOARDS] == ["sollol-exporter.json", "sollol-inference.json", "sollol-overview.json", "sollol-requests.json"]


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
    assert set(uids) == {"sollol-overview", "sollol-inference", "sollol-exporter", "sollol-requests"}


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
    dashboard = load(path)
    exprs = [(panel["title"], target["expr"]) for panel in panels(dashboard) for target in panel.get("targets", [])]
    exprs += [(a["name"], a["expr"]) for a in annotations(dashboard)]
    for title, expr in exprs:
        for window in re.findall(r"(?:rate|increase|irate|changes)\([^\[]*\[([^\]]+)\]", expr):
            assert window == "$__rate_interval", (title, expr)
        for window in re.findall(r"\boffset\s+(\S+)", expr):
            assert window.rstrip(")") == "$__rate_interval", (title, expr)


def annotations(dashboard):
    return [a for a in dashboard.get("annotations", {}).get("list", []) if not a.get("builtIn")]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_annotations_use_the_data_source_variable_and_the_filters(path):
    dashboard = load(path)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for annotation in annotations(dashboard):
        assert annotation["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, annotation["name"]
        assert annotation["expr"] and annotation["titleFormat"] and annotation["tagKeys"], annotation["name"]
        assert "coordinator" in variables and '$coordinator"' in annotation["expr"], annotation["name"]


def test_coordinator_lifecycle_events_are_annotations_where_coordinators_are_shown():
    for name in ("sollol-inference.json", "sollol-requests.json"):
        (annotation,) = annotations(load(ROOT / "grafana" / "dashboards" / name))
        assert "sollol_coordinator_lifecycle_events_total" in annotation["expr"]


def test_heatmaps_read_the_buckets_as_prometheus_counted_them():
    heatmaps = [p for path in DASHBOARDS for p in panels(load(path)) if p["type"] == "heatmap"]
    assert heatmaps
    for panel in heatmaps:
        assert panel["options"]["calculate"] is False, panel["title"]
        for target in panel["targets"]:
            assert target["format"] == "heatmap" and "_bucket" in target["expr"] and "by (le)" in target["expr"], panel["title"]


def test_sollols_own_figures_are_titled_as_its_own_view():
    """Panels that relay SOLLOL's own averages and percentiles say so: the exporter's histograms are the other view."""
    own = re.compile(r"sollol_router_(latency_seconds|average_duration_seconds|success_ratio)\b")
    relaying = [p for path in DASHBOARDS for p in panels(load(path)) if any(own.search(t["expr"]) for t in p.get("targets", []))]
    assert len(relaying) >= 3
    for panel in relaying:
        assert panel["title"].endswith("(SOLLOL's own view)"), panel["title"]


def test_cluster_dashboards_filter_by_coordinator_backend_and_node():
    for name in ("sollol-overview.json", "sollol-inference.json"):
        dashboard = load(ROOT / "grafana" / "dashboards" / name)
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        for variable in ("coordinator", "backend", "node"):
            assert variables[variable]["type"] == "query" and variables[variable]["includeAll"]
            used = [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if f"${variable}" in t["expr"]]
            assert used, f"{name}: ${variable} filters nothing"


def test_requests_dashboard_filters_by_coordinator_node_and_model():
    dashboard = load(ROOT / "grafana" / "dashboards" / "sollol-requests.json")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for variable in ("coordinator", "node", "model"):
        assert variables[variable]["type"] == "query" and variables[variable]["includeAll"]
    for panel in panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            # every query of the events' families applies the filters its labels allow
            if re.search(r"\bsollol_requests_total|sollol_request_duration_seconds_bucket|sollol_request_errors_total", expr):
                assert '$node"' in expr and '$model"' in expr, (panel["title"], expr)
            if re.search(r"sollol_coordinator_(requests_total|completion_tokens|request_duration)", expr):
                assert '$coordinator"' in expr and '$model"' in expr, (panel["title"], expr)
            if re.search(r"^\w+ by \(node\) \(node:", expr):
                assert '$node"' in expr, (panel["title"], expr)
            if re.search(r"^\w+ by \(model\) \(model:", expr):
                assert '$model"' in expr, (panel["title"], expr)
