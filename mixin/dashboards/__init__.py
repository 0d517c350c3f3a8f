"""The mixin's dashboards, one module each, built with grafana-foundation-sdk from a Config (job selector, cluster
and instance label names, tags, refresh, SLO window), as mixin/rules.py builds the rules. Each query is written
with its selectors (promql.Selectors): the job selector and the selected cluster on every series of the exporter,
the cluster alone on recorded series. grafana/generate.py writes them to grafana/dashboards/."""

from __future__ import annotations

import json

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from mixin.config import Config
from mixin.dashboards.exporter import exporter_health
from mixin.dashboards.inference import inference
from mixin.dashboards.overview import overview
from mixin.dashboards.requests import requests_dashboard
from mixin.dashboards.slo import slo_dashboard

DASHBOARDS = {"sollol-overview.json": overview, "sollol-slo.json": slo_dashboard, "sollol-inference.json": inference,
              "sollol-requests.json": requests_dashboard, "sollol-exporter.json": exporter_health}


def build(config: Config | None = None) -> dict[str, dict]:
    """Every dashboard, file name -> dashboard JSON, for `config` (default: the shipped stack's)."""
    cfg = config or Config()
    built = {}
    for name, make in DASHBOARDS.items():
        model = make(cfg).build()
        for index, panel in enumerate(model.panels or [], start=1):
            panel.id_val = index
        built[name] = json.loads(JSONEncoder().encode(model))
    return built


def render(config: Config | None = None) -> dict[str, str]:
    """Every dashboard as the text of its file."""
    return {name: json.dumps(model, sort_keys=True, indent=2) + "\n" for name, model in build(config).items()}
