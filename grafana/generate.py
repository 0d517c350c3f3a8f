#!/usr/bin/env python3
"""Dashboards as code: writes grafana/dashboards/*.json from the definitions below (grafana-foundation-sdk) and the
mixin's configuration (mixin/config.py: job selector, cluster label name, tags, refresh).

    .venv/bin/python grafana/generate.py            # rewrite the JSON files
    .venv/bin/python grafana/generate.py --check    # exit 1 if the committed JSON differs from the code
    .venv/bin/python grafana/generate.py --set job_selector='job="monitoring/sollol-exporter"' --set cluster_label=k8s_cluster --out DIR

The generated JSON is committed; a test fails when it drifts from this file. The queries below are written without
the job and cluster matchers: `scope()` adds them to every metric selector of every panel, annotation and variable
query (`<job selector>,<cluster label>=~"$cluster"`; recording rules drop the job label, so theirs get the cluster
matcher only).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from grafana_foundation_sdk.builders import dashboard as db  # noqa: E402
from grafana_foundation_sdk.builders import heatmap, stat, statetimeline, table, timeseries  # noqa: E402
from grafana_foundation_sdk.builders import prometheus as prom  # noqa: E402
from grafana_foundation_sdk.cog.encoder import JSONEncoder  # noqa: E402
from grafana_foundation_sdk.models import common as cm  # noqa: E402
from grafana_foundation_sdk.models import dashboard as dm  # noqa: E402
from grafana_foundation_sdk.models import heatmap as hm  # noqa: E402
from grafana_foundation_sdk.models.prometheus import PromQueryFormat  # noqa: E402

from mixin.config import Config  # noqa: E402
from mixin.slos import sli_windows  # noqa: E402

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
ALERTMANAGER = dm.DataSourceRef(type_val="alertmanager", uid="${alertmanager}")
C, B, N, M = 'coordinator=~"$coordinator"', 'backend=~"$backend"', 'node=~"$node"', 'model=~"$model"'
QUANTILES = ("0.5", "0.95", "0.99")

# One number per state, so that tables and timelines can colour and name it.
RPC_STATE_CODE = (
    'max by (backend) ('
    '(sollol_rpc_backend_state{state=~"reachable|serving",' + B + '} == 1) * 0 + 1 or '
    '(sollol_rpc_backend_state{state="busy",' + B + '} == 1) * 0 + 2 or '
    '(sollol_rpc_backend_state{state=~"refused|not_serving|error",' + B + '} == 1) * 0 + 3 or '
    '(sollol_rpc_backend_state{state=~"unreachable|dns_error",' + B + '} == 1) * 0 + 4)'
)
RPC_STATES = {"1": ("HEALTHY", "green"), "2": ("BUSY", "blue"), "3": ("OFFLINE", "red"), "4": ("UNREACHABLE", "orange")}
COORDINATOR_STATE_CODE = (
    'max by (coordinator) ('
    '(sollol_coordinator_state{state="ok",' + C + '} == 1) * 0 + 1 or '
    '(sollol_coordinator_state{state="loading",' + C + '} == 1) * 0 + 2 or '
    '(sollol_coordinator_state{state="stalled",' + C + '} == 1) * 0 + 3 or '
    '(sollol_coordinator_state{state=~"hung|unreachable|error",' + C + '} == 1) * 0 + 4 or '
    '(sollol_coordinator_state{state="absent",' + C + '} == 1) * 0 + 5)'
)
# ABSENT: a default address where no coordinator was ever expected or seen (no llama.cpp here); not an outage.
COORDINATOR_STATES = {"1": ("OK", "green"), "2": ("LOADING", "blue"), "3": ("STALLED", "orange"), "4": ("DOWN", "red"),
                      "5": ("ABSENT", "text")}
# Every part the exporter reports an `_up` series for is one it expects: absent parts have none, so they are left out.
# Filters apply to the parts that carry their label; the others (Redis, the dashboard) pass every filter.
PARTS_UP = ('{__name__=~"sollol_(redis|coordinator|rpc_backend|ollama_node|dashboard)_up",'
            'coordinator=~"$coordinator|",backend=~"$backend|",node=~"$node|"}')
# Latency defaults to unary requests: a stream's latency is its whole generation.
UNARY, STREAMED = 'streaming="false"', 'streaming="true"'


def mapping(states: dict[str, tuple[str, str]]) -> list[dm.ValueMap]:
    return [dm.ValueMap(options={value: dm.ValueMappingResult(text=text, color=color, index=i)
                                 for i, (value, (text, color)) in enumerate(states.items())})]


def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False, as_table: bool = False,
          as_heatmap: bool = False) -> prom.Dataquery:
    q = prom.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    if as_table:
        q = q.format(PromQueryFormat.TABLE)
    if as_heatmap:
        q = q.format(PromQueryFormat.HEATMAP)
    return q


def place(panel, x: int, y: int, w: int, h: int):
    return panel.grid_pos(dm.GridPos(x=x, y=y, w=w, h=h)).datasource(DATASOURCE)


def stat_panel(title, description, unit, *queries, mappings=None):
    panel = stat.Panel().title(title).description(description).unit(unit)
    for q in queries:
        panel = panel.with_target(q)
    if mappings:
        panel = panel.mappings(mappings)
    return panel


def series_panel(title, description, unit, *queries):
    panel = timeseries.Panel().title(title).description(description).unit(unit)
    for q in queries:
        panel = panel.with_target(q)
    return panel


def timeline_panel(title, description, expr, legend, states):
    return (statetimeline.Panel().title(title).description(description).unit("none")
            .with_target(query(expr, legend)).mappings(mapping(states)))


def table_panel(title, description, unit, *queries, merge=True, mappings=None, overrides=()):
    panel = table.Panel().title(title).description(description).unit(unit)
    for q in queries:
        panel = panel.with_target(q)
    if merge and len(queries) > 1:
        panel = panel.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
    panel = panel.with_transformation(dm.DataTransformerConfig(id_val="organize", options={"excludeByName": {"Time": True}}))
    if mappings:
        panel = panel.mappings(mappings)
    for field, props in overrides:
        panel = panel.override_by_name(field, props)
    return panel


def heatmap_panel(title, description, bucket_unit, value_unit, q):
    """Buckets as Prometheus counted them (format heatmap, no recalculation), one cell per bucket and time step: the
    y axis in the buckets' unit, the cells (and the panel's unit) in the counts' unit."""
    return (heatmap.Panel().title(title).description(description).unit(value_unit).with_target(q)
            .calculate(False).cell_gap(1)
            .color(heatmap.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME).scheme("Oranges")
                   .scale(hm.HeatmapColorScale.EXPONENTIAL).exponent(0.5).steps(64).fill("dark-orange").reverse(False))
            .y_axis(heatmap.YAxisConfig().unit(bucket_unit).axis_placement(cm.AxisPlacement.LEFT))
            .cell_values(heatmap.CellValues().unit(value_unit))
            .filter_values(heatmap.FilterValueRange().le(1e-9))
            .show_legend().mode(cm.TooltipDisplayMode.SINGLE).show_y_histogram())


class _PromAnnotation(dm.AnnotationQuery):
    """An annotation query of the Prometheus data source: the SDK's model lacks the fields that name and tag it."""

    def __init__(self, title_format: str, tag_keys: str, text_format: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.title_format, self.tag_keys, self.text_format = title_format, tag_keys, text_format

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload.update({"titleFormat": self.title_format, "tagKeys": self.tag_keys, "textFormat": self.text_format,
                        "useValueForTime": False})
        return payload


class _Built:
    def __init__(self, model) -> None:
        self.model = model

    def build(self):
        return self.model


# A lifecycle event is an increase of its counter, or the counter's first appearance (its first event after the
# exporter started: the series is born at 1, which increase() cannot see).
LIFECYCLE = (
    "sum by (coordinator, event) ("
    "increase(sollol_coordinator_lifecycle_events_total{" + C + "}[$__rate_interval]) > 0 or "
    "(sollol_coordinator_lifecycle_events_total{" + C + "} unless sollol_coordinator_lifecycle_events_total{" + C + "} offset $__rate_interval))"
)


def lifecycle_annotation():
    return _Built(_PromAnnotation(
        name="Coordinator lifecycle", datasource=DATASOURCE, enable=True, hide=False, icon_color="purple",
        expr=LIFECYCLE, title_format="Coordinator {{event}}", tag_keys="coordinator,event",
        text_format="{{coordinator}}: {{event}} (start, stop, restart or model_load, from SOLLOL's rpc activity events)"))


def prop(name, value):
    return dm.DynamicConfigValue(id_val=name, value=value)


# Where each filter variable finds its values: the probes for the cluster dashboards, the probes and the activity
# events for the requests dashboard (a node or coordinator SOLLOL talks to need not be one the exporter probes).
SOURCES = {"coordinator": "sollol_coordinator_up", "backend": "sollol_rpc_backend_up", "node": "sollol_ollama_node_up"}
EVENT_SOURCES = {
    "coordinator": '{__name__=~"sollol_coordinator_up|sollol_coordinator_requests_total"}',
    "node": '{__name__=~"sollol_ollama_node_up|sollol_requests_total"}',
    "model": '{__name__=~"sollol_requests_total|sollol_coordinator_requests_total"}',
}


# Every exporter exposes its build info: the cluster variable lists the clusters that have an exporter of this job.
CLUSTER_SOURCE = "sollol_exporter_build_info"


def variables(dash: db.Dashboard, cfg: Config, *names: str, alerts: bool = False, sources: dict[str, str] = SOURCES) -> db.Dashboard:
    dash = dash.with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    if alerts:
        dash = dash.with_variable(db.DatasourceVariable("alertmanager").label("Alertmanager").type("alertmanager"))
    # One SOLLOL cluster at a time (kubernetes-mixin's cluster variable): the only query not scoped by $cluster.
    dash = dash.with_variable(
        db.QueryVariable("cluster").label("Cluster").datasource(DATASOURCE)
        .query(f"label_values({CLUSTER_SOURCE}{{{cfg.job_selector}}}, {cfg.cluster_label})")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
        .include_all(False).multi(False)
    )
    for name in names:
        dash = dash.with_variable(
            db.QueryVariable(name).label(name.capitalize()).datasource(DATASOURCE)
            .query(f"label_values({sources[name]}, {name})")
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).include_all(True).multi(True).all_value(".*")
            .current(dm.VariableOption(selected=True, text="All", value="$__all"))
        )
    return dash


# uid, title of each dashboard: the dashboard links of every dashboard lead to the others.
TITLES = {"sollol-overview": "SOLLOL overview", "sollol-slo": "SOLLOL SLOs", "sollol-inference": "SOLLOL inference cluster",
          "sollol-requests": "SOLLOL requests", "sollol-exporter": "SOLLOL exporter health"}


def dashboard_links(uid: str) -> list[_Built]:
    """Overview first, then the others; each keeps the time range and the variables (data source, cluster, filters)."""
    return [_Built(dm.DashboardLink(title=title, type_val=dm.DashboardLinkType.LINK, url=f"/d/{other}", icon="dashboard",
                                    tooltip=f"Open {title}", include_vars=True, keep_time=True))
            for other, title in TITLES.items() if other != uid]


def data_link(title: str, uid: str, variable: str, field: str) -> dict[str, object]:
    """A link from a table row to dashboard `uid` filtered on the row's `field`, same cluster, data source and time."""
    return {"title": title, "targetBlank": False,
            "url": f"/d/{uid}?var-{variable}=${{__data.fields.{field}}}&${{datasource:queryparam}}&${{cluster:queryparam}}"
                   "&${__url_time_range}"}


def base(cfg: Config, uid: str, description: str) -> db.Dashboard:
    return (db.Dashboard(TITLES[uid]).uid(uid).description(description).tags(list(cfg.dashboard_tags))
            .refresh(cfg.dashboard_refresh).time("now-1h", "now").timezone("browser").editable().links(dashboard_links(uid)))


def thresholds(*steps: tuple[float | None, str]):
    return _Built(dm.ThresholdsConfig(mode=dm.ThresholdsMode.ABSOLUTE, steps=[dm.Threshold(value=v, color=c) for v, c in steps]))


def panel_link(title: str, uid: str) -> _Built:
    """A link in a panel's header to dashboard `uid`, same data source, cluster and time range."""
    return _Built(dm.DashboardLink(title=title, type_val=dm.DashboardLinkType.LINK, icon="dashboard", tooltip=title,
                                   url=f"/d/{uid}?${{datasource:queryparam}}&${{cluster:queryparam}}&${{__url_time_range}}"))


# The events' request figures over the selected nodes, as the overview's top row and the requests dashboard show them.
REQ_ALL = "sollol_requests_total{" + N + "}"
REQ_ALL_ERR = 'sollol_requests_total{outcome="error",' + N + "}"
# Budget left of every SLO over the selection: SLOs about a node or coordinator follow the filter, the others pass it.
WORST_BUDGET = 'min(slo:period_error_budget_remaining:ratio{coordinator=~"$coordinator|",node=~"$node|"})'
BUDGET_COLOURS = ((None, "red"), (0, "orange"), (0.25, "green"))


def overview(cfg: Config) -> db.Dashboard:
    dash = variables(base(cfg, "sollol-overview", "The cluster at a glance: is every part up, how much does SOLLOL serve, how much "
                          "fails, how slow, how many tokens, how much error budget is left, and how full is each GPU."),
                     cfg, "coordinator", "backend", "node", alerts=True)
    panels = [
        # The ten-second row: what is down, how much is served and fails, how slow, how many tokens, what budget is left.
        place(stat_panel("System status", "HEALTHY when every part this cluster has is up: Redis, the selected coordinators, RPC "
                         "workers and Ollama nodes, and SOLLOL's dashboard service; DEGRADED when one is down. Parts the "
                         "exporter does not expect (a default address where nothing was ever found) are left out; "
                         "NOTHING FOUND when it reports no part at all.", "none",
                         query(f"min({PARTS_UP})", instant=True),
                         mappings=mapping({"1": ("HEALTHY", "green"), "0": ("DEGRADED", "red")})).no_value("NOTHING FOUND"), 0, 0, 4, 4),
        place(stat_panel("Requests per second", "Requests SOLLOL sends the selected Ollama nodes, both outcomes, from its activity "
                         "events (attempts: a retried request counts on each node it tried).", "reqps",
                         query(f"sum(rate({REQ_ALL}[$__rate_interval]))", instant=True)), 4, 0, 4, 4),
        place(stat_panel("Error ratio", "Share of those requests that failed (HTTP error, timeout, connection), from SOLLOL's "
                         "events: 0 while none fails.", "percentunit",
                         query(f"(sum(rate({REQ_ALL_ERR}[$__rate_interval])) or vector(0)) / sum(rate({REQ_ALL}[$__rate_interval]))",
                               instant=True)).thresholds(thresholds((None, "green"), (0.01, "orange"), (0.05, "red"))), 8, 0, 4, 4),
        place(stat_panel("p95 latency", "95th percentile of successful unary (not streamed) requests to the selected nodes, from the "
                         "exporter's histograms (a stream's latency is its whole generation).", "s",
                         query(f"histogram_quantile(0.95, sum by (le) (rate(sollol_request_duration_seconds_bucket{{{UNARY},{N}}}"
                               "[$__rate_interval])))", instant=True)), 12, 0, 4, 4),
        place(stat_panel("Tokens per second", "Tokens the selected llama.cpp coordinators generate per second, from llama-server's "
                         "own counter (Ollama's token counts do not reach SOLLOL's events).", "suffix: tok/s",
                         query(f"sum(rate(sollol_coordinator_tokens_predicted_total{{{C}}}[$__rate_interval]))", instant=True)), 16, 0, 4, 4),
        place(stat_panel("Worst SLO budget", "The least error budget left over the SLO window among all SLOs (nodes, models, "
                         "coordinators, applications; those of a node or coordinator follow the filters): below 0 an SLO is "
                         "already missed. The SOLLOL SLOs dashboard has each one.", "percentunit",
                         query(WORST_BUDGET, instant=True))
              .thresholds(thresholds(*BUDGET_COLOURS)).links([panel_link("Every SLO and its budget", "sollol-slo")]), 20, 0, 4, 4),
        place(stat_panel("Active applications", "Applications heartbeating SOLLOL's dashboard.", "none",
                         query("sum(sollol_application_up)", instant=True)), 0, 4, 4, 4),
        place(stat_panel("Active hosts", "Ollama nodes answering the exporter's probe, out of all known nodes.", "none",
                         query(f"sum(sollol_ollama_node_up{{{N}}})", "up", instant=True),
                         query(f"count(sollol_ollama_node_up{{{N}}})", "total", "B", instant=True)), 4, 4, 4, 4),
        place(stat_panel("GPU memory used", "GPU memory in use on the selected nodes with a GPU reporter.", "bytes",
                         query(f"sum(sollol_gpu_memory_used_bytes{{{N}}})", instant=True)), 8, 4, 4, 4),
        place(stat_panel("Hottest GPU", "The highest GPU temperature the reporters of the selected nodes give.", "celsius",
                         query(f"max(sollol_gpu_temperature_celsius{{{N}}})", instant=True))
              .thresholds(thresholds((None, "green"), (80, "orange"), (90, "red"))), 12, 4, 4, 4),
        place(stat_panel("Average latency (SOLLOL's own view)",
                         "Mean request duration since the router started, as SOLLOL's routers report it (not a rate; "
                         "the p95 above and the SOLLOL requests dashboard have latency from the exporter's own histograms).", "s",
                         query("avg(sollol_router_average_duration_seconds)", instant=True)), 16, 4, 4, 4),
        place(stat_panel("Success rate (SOLLOL's own view)",
                         "Successful / total requests since the router started, as SOLLOL's routers report it.", "percentunit",
                         query("avg(sollol_router_success_ratio)", instant=True)), 20, 4, 4, 4),
        # What SOLLOL actually served, from its activity events (recording rules, 5 minute windows).
        place(series_panel("Requests per second per node", "Requests SOLLOL sent to each Ollama node, by its activity events, "
                           "averaged over 5 minutes (recording rule node:sollol_requests:rate5m).", "reqps",
                           query(f"sum by (node) (node:sollol_requests:rate5m{{{N}}})", "{{node}}")), 0, 8, 8, 8),
        place(series_panel("Error ratio per node", "Share of each node's requests that failed over 5 minutes "
                           "(recording rule node:sollol_request_errors:ratio_rate5m).", "percentunit",
                           query(f"max by (node) (node:sollol_request_errors:ratio_rate5m{{{N}}})", "{{node}}")), 8, 8, 8, 8),
        place(series_panel("p95 latency per model", "95th percentile of successful unary (not streamed) requests per model over "
                           "5 minutes, from the exporter's histograms (recording rule model:sollol_request_duration_seconds:quantile_rate5m).", "s",
                           query(f'max by (model) (model:sollol_request_duration_seconds:quantile_rate5m{{quantile="0.95",{UNARY}}})',
                                 "{{model}}")), 16, 8, 8, 8),
        # How full is each GPU, and with what.
        place(table_panel(
            "GPUs", "Per node and GPU, from SOLLOL's GPU reporters: the card, memory used of total, utilisation and temperature.", "none",
            query(f"max by (node, gpu, name, vendor) (sollol_gpu_info{{{N}}})", ref="A", instant=True, as_table=True),
            query(f"max by (node, gpu) (sollol_gpu_memory_used_bytes{{{N}}} / sollol_gpu_memory_total_bytes{{{N}}})", ref="B", instant=True, as_table=True),
            query(f"max by (node, gpu) (sollol_gpu_memory_total_bytes{{{N}}})", ref="C", instant=True, as_table=True),
            query(f"max by (node, gpu) (sollol_gpu_utilization_ratio{{{N}}})", ref="D", instant=True, as_table=True),
            query(f"max by (node, gpu) (sollol_gpu_temperature_celsius{{{N}}})", ref="E", instant=True, as_table=True),
            overrides=[("Value #A", [prop("custom.hidden", True)]),
                       ("Value #B", [prop("displayName", "Memory used"), prop("unit", "percentunit")]),
                       ("Value #C", [prop("displayName", "Memory"), prop("unit", "bytes")]),
                       ("Value #D", [prop("displayName", "Utilisation"), prop("unit", "percentunit")]),
                       ("Value #E", [prop("displayName", "Temperature"), prop("unit", "celsius")]),
                       ("node", [prop("links", [data_link("Load and GPUs of ${__data.fields.node}", "sollol-inference", "node", "node")])])]),
              0, 16, 12, 8),
        place(table_panel(
            "Loaded models", "Per node and model Ollama has loaded (/api/ps): its memory, the part of it in GPU memory (Ollama's "
            "estimate; less than all of it means layers run on the CPU, many times slower), and when it is unloaded.", "none",
            query(f"max by (node, model) (sollol_ollama_model_memory_bytes{{{N}}})", ref="A", instant=True, as_table=True),
            query(f"max by (node, model) (sollol_ollama_model_vram_bytes{{{N}}})", ref="B", instant=True, as_table=True),
            query(f"max by (node, model) (sollol_ollama_model_vram_bytes{{{N}}} / sollol_ollama_model_memory_bytes{{{N}}})", ref="C", instant=True,
                  as_table=True),
            query(f"max by (node, model) (sollol_ollama_model_expiry_seconds{{{N}}})", ref="D", instant=True, as_table=True),
            overrides=[("Value #A", [prop("displayName", "Memory"), prop("unit", "bytes")]),
                       ("Value #B", [prop("displayName", "GPU memory"), prop("unit", "bytes")]),
                       ("Value #C", [prop("displayName", "On the GPU"), prop("unit", "percentunit")]),
                       ("Value #D", [prop("displayName", "Unloaded in"), prop("unit", "s")]),
                       ("model", [prop("links", [data_link("Requests for ${__data.fields.model}", "sollol-requests", "model", "model")])]),
                       ("node", [prop("links", [data_link("Requests to ${__data.fields.node}", "sollol-requests", "node", "node")])])]),
              12, 16, 12, 8),
        place(series_panel("GPU memory per model", "GPU memory each loaded model holds on each node (Ollama's estimate from /api/ps), "
                           "stacked per node it is what Ollama has put on that node's GPUs.", "bytes",
                           query(f"sum by (node, model) (sollol_ollama_model_vram_bytes{{{N}}})", "{{node}} {{model}}")), 0, 24, 8, 8),
        place(series_panel("GPU temperature", "Temperature per node and GPU, from SOLLOL's GPU reporters.", "celsius",
                           query(f"max by (node, gpu) (sollol_gpu_temperature_celsius{{{N}}})", "{{node}} gpu{{gpu}}")), 8, 24, 8, 8),
        place(series_panel("RPC workers up", "Share of the RPC workers answering their probe: per selected coordinator, of the workers "
                           "it drives (recording rule coordinator:sollol_rpc_backend_up:ratio), and of all workers of the cluster "
                           "(cluster:sollol_rpc_backend_up:ratio, not filtered by worker).", "percentunit",
                           query(f"max by (coordinator) (coordinator:sollol_rpc_backend_up:ratio{{{C}}})", "{{coordinator}}"),
                           query("max(cluster:sollol_rpc_backend_up:ratio)", "all workers", "B")), 16, 24, 8, 8),
        place(table_panel(
            "Ollama hosts", "Per node: probe result, probe latency, Ollama version, models loaded, GPUs (or CPU only), and SOLLOL's "
            "view: its success ratio, requests in flight, latency figure, free-VRAM estimate and routing priority.", "none",
            query(f"max by (node) (sollol_ollama_node_up{{{N}}})", ref="A", instant=True, as_table=True),
            query(f"max by (node) (sollol_ollama_node_probe_duration_seconds{{{N}}})", ref="B", instant=True, as_table=True),
            query(f"max by (node, version) (sollol_ollama_node_info{{{N}}})", ref="C", instant=True, as_table=True),
            query(f"max by (node) (sollol_ollama_node_loaded_models{{{N}}})", ref="D", instant=True, as_table=True),
            query(f"max by (node) (sollol_gpu_devices{{{N}}})", ref="E", instant=True, as_table=True),
            query(f"max by (node) (sollol_gpu_cpu_only{{{N}}})", ref="F", instant=True, as_table=True),
            query(f"max by (node) (sollol_ollama_node_success_ratio{{{N}}})", ref="G", instant=True, as_table=True),
            query(f"max by (node) (sollol_ollama_node_active_requests{{{N}}})", ref="H", instant=True, as_table=True),
            query(f"max by (node) (sollol_ollama_node_reported_latency_seconds{{{N}}})", ref="I", instant=True, as_table=True),
            query(f"max by (node) (sollol_ollama_node_reported_gpu_free_bytes{{{N}}})", ref="J", instant=True, as_table=True),
            query(f"max by (node) (sollol_ollama_node_priority{{{N}}})", ref="K", instant=True, as_table=True),
            overrides=[("Value #A",
                        [prop("displayName", "Up"),
                         prop("mappings", [{"type": "value", "options": {"1": {"text": "UP", "color": "green"}, "0": {"text": "DOWN", "color": "red"}}}])]),
                       ("Value #B", [prop("displayName", "Probe latency"), prop("unit", "s")]),
                       ("Value #C", [prop("custom.hidden", True)]),
                       ("Value #D", [prop("displayName", "Models loaded"), prop("unit", "none")]),
                       ("Value #E", [prop("displayName", "GPUs"), prop("unit", "none")]),
                       ("Value #F",
                        [prop("displayName", "CPU only"),
                         prop("mappings", [{"type": "value", "options": {"1": {"text": "YES", "color": "orange"}, "0": {"text": "no"}}}])]),
                       ("Value #G", [prop("displayName", "Success rate (SOLLOL)"), prop("unit", "percentunit")]),
                       ("Value #H", [prop("displayName", "In flight (SOLLOL)"), prop("unit", "none")]),
                       ("Value #I", [prop("displayName", "Latency (SOLLOL)"), prop("unit", "s")]),
                       ("Value #J", [prop("displayName", "Free VRAM (SOLLOL)"), prop("unit", "bytes")]),
                       ("Value #K", [prop("displayName", "Priority (SOLLOL)"), prop("unit", "none")]),
                       ("node", [prop("links", [data_link("Requests to ${__data.fields.node}", "sollol-requests", "node", "node"),
                                                data_link("Load and GPUs of ${__data.fields.node}", "sollol-inference", "node", "node")])])]), 0, 32, 12, 8),
        place(table_panel(
            "RPC backends", "llama.cpp rpc-server workers: state by the exporter's rule (busy = held by its coordinator), probe "
            "latency, how they are probed and where the exporter found them.", "none",
            query(RPC_STATE_CODE, ref="A", instant=True, as_table=True),
            query(f"max by (backend) (sollol_rpc_backend_probe_duration_seconds{{{B}}})", ref="B", instant=True, as_table=True),
            query(f"max by (backend, probe, source) (sollol_rpc_backend_info{{{B}}})", ref="C", instant=True, as_table=True),
            mappings=mapping(RPC_STATES),
            overrides=[("Value #A", [prop("displayName", "State")]),
                       ("Value #B", [prop("displayName", "Probe latency"), prop("unit", "s")]),
                       ("Value #C", [prop("custom.hidden", True)]),
                       ("backend",
                        [prop("links", [data_link("Worker ${__data.fields.backend} over time", "sollol-inference", "backend", "backend")])])]), 12, 32, 12, 8),
        place(table_panel(
            "Applications", "Applications registered with SOLLOL's dashboard: name, router type, version, uptime and how long ago "
            "the last heartbeat came.", "s",
            query("max by (app, router_type) (sollol_application_uptime_seconds)", ref="A", instant=True, as_table=True),
            query("time() - max by (app, router_type) (sollol_application_last_heartbeat_timestamp_seconds)", ref="B", instant=True, as_table=True),
            query("max by (app, router_type, version) (sollol_application_info)", ref="C", instant=True, as_table=True),
            overrides=[("Value #A", [prop("displayName", "Uptime")]), ("Value #B", [prop("displayName", "Last heartbeat")]),
                       ("Value #C", [prop("custom.hidden", True)])]), 0, 40, 12, 8),
        place(db.Panel().type("alertlist").title("Active alerts")
              .description("Alerts firing in Prometheus (via the Alertmanager data source).").unit("none")
              .options({"alertInstanceLabelFilter": "", "datasource": "${alertmanager}", "groupMode": "default",
                        "maxItems": 20, "sortOrder": 1, "stateFilter": {"firing": True, "pending": True, "normal": False},
                        "viewMode": "list"}), 12, 40, 12, 8).datasource(ALERTMANAGER),
        # SOLLOL's own routers: what they say about themselves in the router metadata.
        place(table_panel(
            "SOLLOL routers (SOLLOL's own view)", "Per router (source): requests per second and success ratio by its own counters, Ollama nodes in its "
            "pool, and its response cache: hit ratio, entries of capacity, evictions per second.", "none",
            query("sum by (source) (rate(sollol_router_requests_total[$__rate_interval]))", ref="A", instant=True, as_table=True),
            query("max by (source) (sollol_router_success_ratio)", ref="B", instant=True, as_table=True),
            query("max by (source) (sollol_pool_nodes_configured)", ref="C", instant=True, as_table=True),
            query("max by (source) (sollol_pool_cache_hits_total / (sollol_pool_cache_hits_total + sollol_pool_cache_misses_total))",
                  ref="D", instant=True, as_table=True),
            query("max by (source) (sollol_pool_cache_entries / sollol_pool_cache_capacity_entries)", ref="E", instant=True, as_table=True),
            query("sum by (source) (rate(sollol_pool_cache_evictions_total[$__rate_interval]))", ref="F", instant=True, as_table=True),
            overrides=[("Value #A", [prop("displayName", "Requests/s"), prop("unit", "reqps")]),
                       ("Value #B", [prop("displayName", "Success rate"), prop("unit", "percentunit")]),
                       ("Value #C", [prop("displayName", "Nodes"), prop("unit", "none")]),
                       ("Value #D", [prop("displayName", "Cache hits"), prop("unit", "percentunit")]),
                       ("Value #E", [prop("displayName", "Cache full"), prop("unit", "percentunit")]),
                       ("Value #F", [prop("displayName", "Evictions/s"), prop("unit", "ops")])]), 0, 48, 12, 8),
        place(stat_panel("SynapticLlamas' router", "Nodes SynapticLlamas' router knows (total, healthy, with a GPU), its routing "
                         "decisions per second and the mean time one takes.", "none",
                         query("max by (kind) (sollol_router_nodes)", "{{kind}} nodes", instant=True),
                         query("sum(rate(sollol_router_routing_decisions_total[$__rate_interval]))", "decisions", "B", instant=True),
                         query("max(sollol_router_average_routing_time_seconds)", "routing time", "C", instant=True))
              .override_by_query("B", [prop("unit", "ops")]).override_by_query("C", [prop("unit", "s")]), 12, 48, 12, 8),
        place(stat_panel("Task types learned", "Distinct task types SynapticLlamas' router has seen.", "none",
                         query("count(sollol_router_task_type_requests_total)", instant=True)), 0, 56, 6, 8),
        place(table_panel("Requests per task type", "Requests per detected task type (SynapticLlamas).", "none",
                          query("sum by (task_type) (sollol_router_task_type_requests_total)", instant=True, as_table=True)), 6, 56, 6, 8),
        place(series_panel("Routing events by type", "Routing decisions read from sollol:routing_stream, per second.", "ops",
                           query("sum by (event_type) (rate(sollol_routing_events_total[$__rate_interval]))", "{{event_type}}")), 12, 56, 12, 8),
    ]
    for panel in panels:
        dash = dash.with_panel(panel)
    return dash


def per_token(numerator: str, denominator: str) -> str:
    """rate(sollol_coordinator_<numerator>) / rate(sollol_coordinator_<denominator>) per coordinator."""
    return " / ".join(f"sum by (coordinator) (rate(sollol_coordinator_{name}{{{C}}}[$__rate_interval]))" for name in (numerator, denominator))


def inference(cfg: Config) -> db.Dashboard:
    dash = variables(base(cfg, "sollol-inference", "llama.cpp coordinators, their RPC workers, Ollama nodes and GPUs over time."),
                     cfg, "coordinator", "backend", "node")
    panels = [
        place(timeline_panel("Coordinator state", "llama-server state per coordinator: OK, LOADING (model loading), STALLED (/metrics "
                             "timing out), DOWN, or ABSENT (a default address where no coordinator was ever configured, announced "
                             "or seen: no llama.cpp here, nothing to alert on).",
                             COORDINATOR_STATE_CODE, "{{coordinator}}", COORDINATOR_STATES), 0, 0, 24, 5),
        place(series_panel("Generated tokens per second", "Tokens generated per second, from llama-server's counters, averaged over "
                           "5 minutes (recording rule coordinator:sollol_coordinator_tokens_predicted:rate5m).", "suffix: tok/s",
                           query(f"sum by (coordinator) (coordinator:sollol_coordinator_tokens_predicted:rate5m{{{C}}})", "{{coordinator}}")), 0, 5, 8, 8),
        place(series_panel("Prompt tokens per second", "Prompt tokens processed per second, averaged over 5 minutes "
                           "(recording rule coordinator:sollol_coordinator_prompt_tokens:rate5m).", "suffix: tok/s",
                           query(f"sum by (coordinator) (coordinator:sollol_coordinator_prompt_tokens:rate5m{{{C}}})", "{{coordinator}}")), 8, 5, 8, 8),
        place(series_panel("Request queue", "Requests being processed and requests deferred, waiting for a slot (queue depth).", "none",
                           query(f"sum by (coordinator) (sollol_coordinator_requests_processing{{{C}}})", "{{coordinator}} processing"),
                           query(f"sum by (coordinator) (sollol_coordinator_requests_deferred{{{C}}})", "{{coordinator}} deferred", "B")), 16, 5, 8, 8),
        place(timeline_panel("RPC backend state", "Worker state by the exporter's rule: HEALTHY, BUSY (held by its coordinator), OFFLINE, UNREACHABLE.",
                             RPC_STATE_CODE, "{{backend}}", RPC_STATES), 0, 13, 24, 6),
        place(series_panel("RPC probe latency", "Time the exporter's probe of each worker took (connect, or handshake/gRPC where configured).", "s",
                           query(f"max by (backend) (sollol_rpc_backend_probe_duration_seconds{{{B}}})", "{{backend}}")), 0, 19, 12, 8),
        place(series_panel("Load distribution across Ollama nodes", "Requests per second SOLLOL sends to each node, and routing "
                           "selections, by SOLLOL's own counters, averaged over 5 minutes (recording rules "
                           "node:sollol_ollama_node_requests:rate5m, node:sollol_routing_node_selections:rate5m).", "reqps",
                           query(f"sum by (node) (node:sollol_ollama_node_requests:rate5m{{{N}}})", "{{node}} requests"),
                           query(f"sum by (node) (node:sollol_routing_node_selections:rate5m{{{N}}})", "{{node}} selected", "B")), 12, 19, 12, 8),
        place(series_panel("GPU memory per node", "GPU memory used and total per node and GPU, from SOLLOL's GPU reporters.", "bytes",
                           query(f"sum by (node, gpu) (sollol_gpu_memory_used_bytes{{{N}}})", "{{node}} gpu{{gpu}} used"),
                           query(f"sum by (node, gpu) (sollol_gpu_memory_total_bytes{{{N}}})", "{{node}} gpu{{gpu}} total", "B")), 0, 27, 8, 8),
        place(series_panel("Worker device memory", "Memory per RPC worker device from the ggml handshake, and GPU memory registered by SOLLOL's scripts.",
                           "bytes",
                           query(f"sum by (backend, device) (sollol_rpc_backend_device_memory_total_bytes{{{B}}}"
                                 f" - sollol_rpc_backend_device_memory_free_bytes{{{B}}})", "{{backend}} dev{{device}} used"),
                           query(f"sum by (backend, gpu) (sollol_rpc_node_gpu_memory_bytes{{{B}}})", "{{backend}} gpu{{gpu}} registered", "B")), 8, 27, 8, 8),
        place(series_panel("GPU utilisation", "GPU utilisation per node and GPU.", "percentunit",
                           query(f"max by (node, gpu) (sollol_gpu_utilization_ratio{{{N}}})", "{{node}} gpu{{gpu}}")), 16, 27, 8, 8),
        place(series_panel("Router metadata age", "Age of sollol:router:metadata: how long ago its writer last refreshed it.", "s",
                           query("max(sollol_metadata_age_seconds)", "age")), 0, 35, 12, 6),
        place(series_panel("Coordinator probe latency", "Time the coordinator probe (/health, /metrics) took.", "s",
                           query(f"max by (coordinator) (sollol_coordinator_probe_duration_seconds{{{C}}})", "{{coordinator}}")), 12, 35, 12, 6),
        # What vLLM's dashboard leads with, from llama-server's own counters.
        place(series_panel("Time per output token", "Seconds llama-server spends generating one token (time generating / tokens "
                           "generated, from its counters): the pace a streamed answer arrives at.", "s",
                           query(per_token("tokens_predicted_seconds_total", "tokens_predicted_total"), "{{coordinator}}")), 0, 41, 8, 8),
        place(series_panel("Prompt processing speed", "Prompt tokens llama-server processes per second of prompt processing (tokens "
                           "/ time, from its counters; cached tokens are not processed again): how long the wait before the "
                           "first token is for a long prompt.", "suffix: tok/s",
                           query(per_token("prompt_tokens_total", "prompt_seconds_total"), "{{coordinator}}")), 8, 41, 8, 8),
        place(series_panel("Prompt cache hit ratio", "Share of prompt tokens llama-server reused from its cache instead of "
                           "processing them (builds since b10406 count them apart).", "percentunit",
                           query(f"sum by (coordinator) (rate(sollol_coordinator_prompt_tokens_cached_total{{{C}}}[$__rate_interval])) / "
                                 f"(sum by (coordinator) (rate(sollol_coordinator_prompt_tokens_cached_total{{{C}}}[$__rate_interval])) + "
                                 f"sum by (coordinator) (rate(sollol_coordinator_prompt_tokens_total{{{C}}}[$__rate_interval])))",
                                 "{{coordinator}}")), 16, 41, 8, 8),
        place(table_panel(
            "Coordinators", "Per coordinator: state, llama-server build, slots, whether the model sleeps (unloaded after idling), "
            "whether its /metrics was read this scrape, and the longest sequence it has seen.", "none",
            query(COORDINATOR_STATE_CODE, ref="A", instant=True, as_table=True),
            query(f"max by (coordinator, build) (sollol_coordinator_build_info{{{C}}})", ref="B", instant=True, as_table=True),
            query(f"max by (coordinator) (sollol_coordinator_slots{{{C}}})", ref="C", instant=True, as_table=True),
            query(f"max by (coordinator) (sollol_coordinator_sleeping{{{C}}})", ref="D", instant=True, as_table=True),
            query(f"max by (coordinator) (sollol_coordinator_metrics_up{{{C}}})", ref="E", instant=True, as_table=True),
            query(f"max by (coordinator) (sollol_coordinator_max_sequence_tokens{{{C}}})", ref="F", instant=True, as_table=True),
            overrides=[("Value #A", [prop("displayName", "State"), prop("mappings", mapping(COORDINATOR_STATES))]),
                       ("Value #B", [prop("custom.hidden", True)]),
                       ("Value #C", [prop("displayName", "Slots")]),
                       ("Value #D",
                        [prop("displayName", "Sleeping"),
                         prop("mappings", [{"type": "value", "options": {"1": {"text": "SLEEPING", "color": "blue"}, "0": {"text": "no"}}}])]),
                       ("Value #E",
                        [prop("displayName", "/metrics"),
                         prop("mappings",
                              [{"type": "value", "options": {"1": {"text": "READ", "color": "green"}, "0": {"text": "NOT READ", "color": "orange"}}}])]),
                       ("Value #F", [prop("displayName", "Longest sequence"), prop("unit", "suffix: tokens")]),
                       ("coordinator",
                        [prop("links", [data_link("Requests to ${__data.fields.coordinator}", "sollol-requests", "coordinator", "coordinator")])])]),
              0, 49, 12, 8),
        place(series_panel("Decode calls per second", "llama_decode() calls per second per coordinator.", "ops",
                           query(f"sum by (coordinator) (rate(sollol_coordinator_decode_calls_total{{{C}}}[$__rate_interval]))",
                                 "{{coordinator}}")), 12, 49, 6, 8),
        place(series_panel("Busy slots per decode", "Average slots busy per llama_decode() call: how much batching the parallel "
                           "slots achieve.", "none",
                           query(f"max by (coordinator) (sollol_coordinator_busy_slots_per_decode{{{C}}})", "{{coordinator}}")), 18, 49, 6, 8),
        place(table_panel(
            "Speculative decoding", "Per coordinator with a draft model: share of draft tokens the target model accepted, "
            "verification steps per second and accepted tokens per step (no rate without drafts).", "none",
            query(per_token("speculative_accepted_tokens_total", "speculative_draft_tokens_total"), ref="A", instant=True, as_table=True),
            query(f"sum by (coordinator) (rate(sollol_coordinator_speculative_drafts_total{{{C}}}[$__rate_interval]))", ref="B", instant=True, as_table=True),
            query(per_token("speculative_accepted_tokens_total", "speculative_drafts_total"), ref="C", instant=True, as_table=True),
            overrides=[("Value #A", [prop("displayName", "Accepted"), prop("unit", "percentunit")]),
                       ("Value #B", [prop("displayName", "Drafts/s"), prop("unit", "ops")]),
                       ("Value #C", [prop("displayName", "Accepted per draft"), prop("unit", "none")])]), 0, 57, 8, 8),
        place(series_panel("GPU temperature", "Temperature per node and GPU, from SOLLOL's GPU reporters.", "celsius",
                           query(f"max by (node, gpu) (sollol_gpu_temperature_celsius{{{N}}})", "{{node}} gpu{{gpu}}")), 8, 57, 8, 8),
        place(stat_panel("Router metadata key", "Whether sollol:router:metadata exists, and the TTL left on it (none once "
                         "CoordinatorManager rewrote it).", "none",
                         query("max(sollol_metadata_present)", "key", instant=True),
                         query("max(sollol_metadata_ttl_seconds)", "TTL", "B", instant=True),
                         mappings=mapping({"1": ("PRESENT", "green"), "0": ("MISSING", "red")}))
              .override_by_query("B", [prop("unit", "s"), prop("mappings", [])]), 16, 57, 8, 4),
        place(table_panel("Metadata writers", "When each of SOLLOL's writers' layouts of sollol:router:metadata was last read: "
                          "OllamaPool every 5 s, SynapticLlamas every 5 s, RayHybridRouter once at its start.", "s",
                          query("time() - max by (variant) (sollol_metadata_variant_last_seen_timestamp_seconds)", instant=True, as_table=True),
                          overrides=[("Value", [prop("displayName", "Last read")])]), 16, 61, 8, 4),
        place(table_panel(
            "Worker registrations", "RPC workers registered by SOLLOL's node scripts (sollol:rpc:node:*): whether the key is there, "
            "a GPU, the CPU and GPU memory offered and the parallel workers.", "none",
            query(f"max by (backend) (sollol_rpc_node_registered{{{B}}})", ref="A", instant=True, as_table=True),
            query(f"max by (backend) (sollol_rpc_node_has_gpu{{{B}}})", ref="B", instant=True, as_table=True),
            query(f"max by (backend) (sollol_rpc_node_cpu_memory_bytes{{{B}}})", ref="C", instant=True, as_table=True),
            query(f"sum by (backend) (sollol_rpc_node_gpu_memory_bytes{{{B}}})", ref="D", instant=True, as_table=True),
            query(f"max by (backend) (sollol_rpc_node_parallel_workers{{{B}}})", ref="E", instant=True, as_table=True),
            overrides=[("Value #A",
                        [prop("displayName", "Registered"),
                         prop("mappings",
                              [{"type": "value", "options": {"1": {"text": "YES", "color": "green"}, "0": {"text": "EXPIRED", "color": "orange"}}}])]),
                       ("Value #B",
                        [prop("displayName", "GPU"), prop("mappings", [{"type": "value", "options": {"1": {"text": "yes"}, "0": {"text": "no"}}}])]),
                       ("Value #C", [prop("displayName", "CPU memory"), prop("unit", "bytes")]),
                       ("Value #D", [prop("displayName", "GPU memory"), prop("unit", "bytes")]),
                       ("Value #E", [prop("displayName", "Parallel workers")])]), 0, 65, 12, 7),
        place(table_panel(
            "Worker devices (handshake)", "What the ggml handshake learned of each worker: devices, RPC protocol, and how long "
            "ago it last answered one.", "none",
            query(f"max by (backend) (sollol_rpc_backend_devices{{{B}}})", ref="A", instant=True, as_table=True),
            query(f"max by (backend, version) (sollol_rpc_backend_protocol_info{{{B}}})", ref="B", instant=True, as_table=True),
            query(f"time() - max by (backend) (sollol_rpc_backend_handshake_timestamp_seconds{{{B}}})", ref="C", instant=True, as_table=True),
            overrides=[("Value #A", [prop("displayName", "Devices")]), ("Value #B", [prop("custom.hidden", True)]),
                       ("Value #C", [prop("displayName", "Last handshake"), prop("unit", "s")])]), 12, 65, 12, 7),
    ]
    for panel in panels:
        dash = dash.with_panel(panel)
    return dash.annotation(lifecycle_annotation())


REQ = "sollol_requests_total{" + N + "," + M + "}"
REQ_ERR = 'sollol_requests_total{outcome="error",' + N + "," + M + "}"
BUCKETS = "sollol_request_duration_seconds_bucket{" + UNARY + "," + N + "," + M + "}"


def error_ratio(by: str) -> str:
    """Failed / all requests per `by`; 0 (not no data) for a node or model without failures."""
    total = f"sum by ({by}) (rate({REQ}[$__rate_interval]))"
    return f"(sum by ({by}) (rate({REQ_ERR}[$__rate_interval])) or 0 * {total}) / {total}"


def latency(by: str) -> list[prom.Dataquery]:
    return [query(f"histogram_quantile({q}, sum by ({by}, le) (rate({BUCKETS}[$__rate_interval])))",
                  f"{{{{{by}}}}} p{q[2:].ljust(2, '0')}", ref) for q, ref in zip(QUANTILES, "ABC", strict=True)]


def recorded_table(by: str, filter_: str, title: str, description: str, links: list[dict[str, object]]):
    columns = [(f"sum by ({by}) ({by}:sollol_requests:rate5m{{{filter_}}})", "Requests/s", "reqps"),
               (f"max by ({by}) ({by}:sollol_request_errors:ratio_rate5m{{{filter_}}})", "Error ratio", "percentunit")]
    columns += [(f'max by ({by}) ({by}:sollol_request_duration_seconds:quantile_rate5m{{quantile="{q}",{UNARY},{filter_}}})',
                 f"p{q[2:].ljust(2, '0')}", "s") for q in QUANTILES]
    refs = "ABCDE"
    return table_panel(title, description, "none",
                       *(query(expr, ref=ref, instant=True, as_table=True) for (expr, _, _), ref in zip(columns, refs, strict=True)),
                       overrides=[*((f"Value #{ref}", [prop("displayName", name), prop("unit", unit)])
                                    for (_, name, unit), ref in zip(columns, refs, strict=True)),
                                  (by, [prop("links", links)])])


def requests_dashboard(cfg: Config) -> db.Dashboard:
    dash = variables(base(cfg, "sollol-requests",
                          "What SOLLOL served, from its activity events: request rate, errors and latency per node, model and coordinator."),
                     cfg, "coordinator", "node", "model", sources=EVENT_SOURCES)
    cr = "sollol_coordinator_requests_total{" + C + "," + M + "}"
    panels = [
        place(stat_panel("Requests per second", "Requests SOLLOL sent to the selected Ollama nodes and models, both outcomes.", "reqps",
                         query(f"sum(rate({REQ}[$__rate_interval]))", instant=True)), 0, 0, 4, 4),
        place(stat_panel("Error ratio", "Share of those requests that failed (HTTP error, timeout, connection).", "percentunit",
                         query(f"(sum(rate({REQ_ERR}[$__rate_interval])) or vector(0)) / sum(rate({REQ}[$__rate_interval]))", instant=True)), 4, 0, 4, 4),
        place(stat_panel("p95 latency", "95th percentile of successful unary (not streamed) requests over the selection, from the "
                         "exporter's histogram.", "s",
                         query(f"histogram_quantile(0.95, sum by (le) (rate({BUCKETS}[$__rate_interval])))", instant=True)), 8, 0, 4, 4),
        place(stat_panel("Coordinator requests per second", "Requests SOLLOL sent to the selected llama.cpp coordinators, both outcomes.", "reqps",
                         query(f"sum(rate({cr}[$__rate_interval]))", instant=True)), 12, 0, 4, 4),
        place(stat_panel("Completion tokens per second", "Completion tokens of coordinator requests, where SOLLOL's events carry them "
                         "(RayHybridRouter's).", "suffix: tok/s",
                         query(f"sum(rate(sollol_coordinator_completion_tokens_total{{{C},{M}}}[$__rate_interval]))", instant=True)), 16, 0, 4, 4),
        place(stat_panel("Event subscriber", "Whether the exporter is subscribed to SOLLOL's activity channels. While it is not, "
                         "nothing on this dashboard is counted (PUB/SUB keeps no backlog).", "none",
                         query("min(sollol_events_subscribed)", instant=True),
                         mappings=mapping({"1": ("SUBSCRIBED", "green"), "0": ("NOT SUBSCRIBED", "red")})), 20, 0, 4, 4),
        place(series_panel("Latency per node (p50, p95, p99)", "Percentiles of successful unary (not streamed) requests per Ollama "
                           "node, from the sollol_request_duration_seconds histogram (buckets 25 ms to 300 s) over the selected models.", "s",
                           *latency("node")), 0, 4, 8, 8),
        place(series_panel("Latency per model (p50, p95, p99)", "Percentiles of successful unary (not streamed) requests per model, "
                           "over the selected nodes.", "s",
                           *latency("model")), 8, 4, 8, 8),
        place(series_panel("Stream duration per model (p50, p95)", "How long a streamed request takes from start to its last chunk, "
                           "per model over 5 minutes (recording rule model:sollol_request_duration_seconds:quantile_rate5m, "
                           "streaming=\"true\"): the whole generation, long by nature, so kept apart from the latency panels.", "s",
                           *(query(f'max by (model) (model:sollol_request_duration_seconds:quantile_rate5m{{quantile="{q}",{STREAMED},{M}}})',
                                   f"{{{{model}}}} p{q[2:].ljust(2, '0')}", ref) for q, ref in (("0.5", "A"), ("0.95", "B")))), 16, 4, 8, 8),
        place(series_panel("Request rate per node", "Requests per second to each node, split by outcome (success, error).", "reqps",
                           query(f"sum by (node, outcome) (rate({REQ}[$__rate_interval]))", "{{node}} {{outcome}}")), 0, 12, 6, 8),
        place(series_panel("Error ratio per node", "Share of each node's requests that failed.", "percentunit",
                           query(error_ratio("node"), "{{node}}")), 6, 12, 6, 8),
        place(series_panel("Request rate per model", "Requests per second for each model, split by outcome.", "reqps",
                           query(f"sum by (model, outcome) (rate({REQ}[$__rate_interval]))", "{{model}} {{outcome}}")), 12, 12, 6, 8),
        place(series_panel("Error ratio per model", "Share of each model's requests that failed.", "percentunit",
                           query(error_ratio("model"), "{{model}}")), 18, 12, 6, 8),
        place(series_panel("Errors per reason", "Failed requests per second per node and reason: http_5xx, http_4xx, timeout, "
                           "connection, other.", "reqps",
                           query(f"sum by (node, reason) (rate(sollol_request_errors_total{{{N},{M}}}[$__rate_interval]))",
                                 "{{node}} {{reason}}")), 0, 20, 8, 9),
        place(heatmap_panel("Latency heatmap", "Successful unary (not streamed) requests per second in each latency bucket, over "
                            "the selected nodes and models: where the bulk of requests lands, and the tail.", "s", "reqps",
                            query(f"sum by (le) (rate({BUCKETS}[$__rate_interval]))", "{{le}}", as_heatmap=True)), 8, 20, 16, 9),
        place(recorded_table("node", N, "Nodes over the last 5 minutes", "Per node, over all models: request rate and error ratio "
                             "(streamed or not) and p50/p95/p99 latency of unary requests, from the recording rules (5 minute "
                             "windows, the ones the alerts use).",
                             [data_link("Requests to ${__data.fields.node}", "sollol-requests", "node", "node"),
                              data_link("Load and GPUs of ${__data.fields.node}", "sollol-inference", "node", "node")]), 0, 29, 12, 8),
        place(recorded_table("model", M, "Models over the last 5 minutes", "Per model, over all nodes: request rate and error ratio "
                             "(streamed or not) and p50/p95/p99 latency of unary requests, from the recording rules (5 minute "
                             "windows, the ones the alerts use).",
                             [data_link("Requests for ${__data.fields.model}", "sollol-requests", "model", "model")]), 12, 29, 12, 8),
        place(series_panel("Coordinator request latency (p95)", "95th percentile of successful coordinator requests per coordinator "
                           "and model over 5 minutes (recording rule).", "s",
                           query("max by (coordinator, model) (coordinator_model:sollol_coordinator_request_duration_seconds:quantile_rate5m"
                                 f'{{quantile="0.95",{C},{M}}})', "{{coordinator}} {{model}}")), 0, 37, 8, 8),
        place(series_panel("Coordinator requests per second", "Requests per second per coordinator and model, split by outcome "
                           "(failures include RayHybridRouter's failed traces).", "reqps",
                           query(f"sum by (coordinator, model, outcome) (rate({cr}[$__rate_interval]))",
                                 "{{coordinator}} {{model}} {{outcome}}")), 8, 37, 8, 8),
        place(series_panel("Completion tokens per second per model", "Completion tokens per second per coordinator and model over "
                           "5 minutes (recording rule), where SOLLOL's events carry them.", "suffix: tok/s",
                           query("sum by (coordinator, model) (coordinator_model:sollol_coordinator_completion_tokens:rate5m"
                                 f"{{{C},{M}}})", "{{coordinator}} {{model}}")), 16, 37, 8, 8),
        place(series_panel("RPC workers per coordinator (heartbeats)", "RPC workers in use and configured, as the coordinator's last "
                           "heartbeat said (rpc_registry: SOLLOL's registry; its checks are TCP connects).", "none",
                           query(f"max by (coordinator) (sollol_coordinator_rpc_backends_active{{{C}}})", "{{coordinator}} active"),
                           query(f"max by (coordinator) (sollol_coordinator_rpc_backends_configured{{{C}}})", "{{coordinator}} configured",
                                 "B")), 0, 45, 12, 8),
        place(series_panel("Latency percentiles (SOLLOL's own view)", "p50/p95/p99 as SOLLOL's routers report them: over their "
                           "last 1,000 requests, since they started, not per node or model; compare with the histograms above.", "s",
                           query('max by (source, quantile) (sollol_router_latency_seconds{quantile=~".+"})', "{{source}} q{{quantile}}")), 12, 45, 12, 8),
        place(table_panel(
            "Coordinators over the last 5 minutes", "Per coordinator and model: request rate, p95 latency of successful requests "
            "and completion tokens per second, from the recording rules (5 minute windows).", "none",
            query(f"sum by (coordinator, model) (coordinator_model:sollol_coordinator_requests:rate5m{{{C},{M}}})", ref="A", instant=True, as_table=True),
            query("max by (coordinator, model) (coordinator_model:sollol_coordinator_request_duration_seconds:quantile_rate5m"
                  f'{{quantile="0.95",{C},{M}}})', ref="B", instant=True, as_table=True),
            query(f"sum by (coordinator, model) (coordinator_model:sollol_coordinator_completion_tokens:rate5m{{{C},{M}}})", ref="C", instant=True,
                  as_table=True),
            overrides=[("Value #A", [prop("displayName", "Requests/s"), prop("unit", "reqps")]),
                       ("Value #B", [prop("displayName", "p95"), prop("unit", "s")]),
                       ("Value #C", [prop("displayName", "Completion tokens/s"), prop("unit", "suffix: tok/s")]),
                       ("coordinator", [prop("links", [data_link("Coordinator ${__data.fields.coordinator} and its workers",
                                                                 "sollol-inference", "coordinator", "coordinator")])])]), 0, 53, 24, 8),
    ]
    for panel in panels:
        dash = dash.with_panel(panel)
    return dash.annotation(lifecycle_annotation())


# The SLO dashboard: every SLO series (one per node, model, coordinator and model, or application) by the labels
# that name it; sloth_id joins a series to its SLO's constants.
SLO_F = 'sloth_slo=~"$slo"'
SLO_BY = "sloth_id, sloth_slo, node, model, coordinator, source"
SLO_LEGEND = "{{sloth_slo}} {{node}}{{coordinator}} {{model}}{{source}}"
REMAINING = f"slo:period_error_budget_remaining:ratio{{{SLO_F}}}"
YEAR = 365 * 86400


def burn_rate(window: str, cfg: Config | None = None) -> str:
    """Error ratio over `window` / error budget; Sloth records it for 5 minutes (current) and the SLO window (period)."""
    recorded = {"5m": "slo:current_burn_rate:ratio", **({cfg.slo_window: "slo:period_burn_rate:ratio"} if cfg else {})}
    if window in recorded:
        return f"max by ({SLO_BY}) ({recorded[window]}{{{SLO_F}}})"
    return f"max by ({SLO_BY}) (slo:sli_error:ratio_rate{window}{{{SLO_F}}} / on (sloth_id) group_left slo:error_budget:ratio)"


def slo_links() -> list[tuple[str, list]]:
    return [("node", [prop("links", [data_link("Requests to ${__data.fields.node}", "sollol-requests", "node", "node")])]),
            ("model", [prop("links", [data_link("Requests for ${__data.fields.model}", "sollol-requests", "model", "model")])]),
            ("coordinator", [prop("links", [data_link("Coordinator ${__data.fields.coordinator} and its workers", "sollol-inference",
                                                      "coordinator", "coordinator")])]),
            ("sloth_id", [prop("custom.hidden", True)])]


def burn_alerts(cfg: Config, severity: str) -> str:
    return f'ALERTS{{alertstate="firing",sloth_service="{cfg.slo_service}",sloth_severity="{severity}",{SLO_F}}}'


def slo_dashboard(cfg: Config) -> db.Dashboard:
    dash = variables(base(cfg, "sollol-slo", f"Every SLO ({cfg.slo_window} window): how much error budget is left, how fast it "
                          "burns over each window the burn-rate alerts read, and which of those alerts fire."), cfg, alerts=True)
    dash = dash.with_variable(
        db.QueryVariable("slo").label("SLO").datasource(DATASOURCE)
        .query(f'label_values(sloth_slo_info{{sloth_service="{cfg.slo_service}"}}, sloth_slo)')
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).include_all(True).multi(True).all_value(".*")
        .current(dm.VariableOption(selected=True, text="All", value="$__all")))
    windows = [*sli_windows(cfg), cfg.slo_window]  # the alerts' windows, then the SLO's
    alert_state = mapping({"2": ("PAGE", "red"), "1": ("TICKET", "orange"), "0": ("—", "green")})
    panels = [
        place(stat_panel("Worst budget left", f"The least error budget left over the {cfg.slo_window} window among the selected "
                         "SLOs; below 0 the objective is already missed.", "percentunit",
                         query(f"min({REMAINING})", instant=True)).thresholds(thresholds(*BUDGET_COLOURS)), 0, 0, 6, 4),
        place(stat_panel("SLOs out of budget", "SLO series (a node, model, coordinator or application) whose error budget is "
                         "spent.", "none",
                         query(f"count({REMAINING} < 0) or 0 * count({REMAINING})", instant=True))
              .thresholds(thresholds((None, "green"), (1, "red"))), 6, 0, 6, 4),
        place(stat_panel("Fastest burn (1 hour)", "The highest burn rate over the last hour: 1 spends the budget exactly over "
                         f"the {cfg.slo_window} window, 14.4 (with the last 5 minutes) pages.", "suffix:×",
                         query(f"max({burn_rate('1h')})", instant=True))
              .thresholds(thresholds((None, "green"), (1, "orange"), (6, "red"))), 12, 0, 6, 4),
        place(stat_panel("Burn alerts firing", "Page (fast burn) and ticket (slow burn) alerts firing for the selected SLOs.", "none",
                         query(f'count({burn_alerts(cfg, "page")}) or 0 * count({REMAINING})', "page", instant=True),
                         query(f'count({burn_alerts(cfg, "ticket")}) or 0 * count({REMAINING})', "ticket", "B", instant=True))
              .thresholds(thresholds((None, "green"), (1, "red"))), 18, 0, 6, 4),
        place(table_panel(
            "SLOs by budget left", f"Every SLO series, least budget first: its objective, the SLI (share of good events) over the "
            f"{cfg.slo_window} window, the error budget left, the burn rate over the last hour, when the budget is gone at that "
            "rate, and the burn alert firing. Nodes, models and coordinators link to their dashboards.", "none",
            query(f"max by ({SLO_BY}) ({REMAINING})", ref="A", instant=True, as_table=True),
            query(f"group by ({SLO_BY}) ({REMAINING}) * on (sloth_id) group_left slo:objective:ratio", ref="B", instant=True, as_table=True),
            query(f"1 - max by ({SLO_BY}) (slo:sli_error:ratio_rate{cfg.slo_window}{{{SLO_F}}})", ref="C", instant=True, as_table=True),
            query(burn_rate("1h"), ref="D", instant=True, as_table=True),
            query(f"clamp_max(clamp_min(max by ({SLO_BY}) ({REMAINING}), 0) * on (sloth_id) group_left slo:time_period:days * 86400 "
                  f"/ {burn_rate('1h')}, {YEAR})", ref="E", instant=True, as_table=True),
            query(f'max by ({SLO_BY}) ({burn_alerts(cfg, "page")} * 0 + 2 or {burn_alerts(cfg, "ticket")} * 0 + 1) '
                  f"or group by ({SLO_BY}) ({REMAINING}) * 0", ref="F", instant=True, as_table=True),
            overrides=[("Value #A", [prop("displayName", "Budget left"), prop("unit", "percentunit"),
                                     prop("thresholds", {"mode": "absolute", "steps": [{"value": None, "color": "red"}, {"value": 0, "color": "orange"},
                                                                                      {"value": 0.25, "color": "green"}]}),
                                     prop("custom.cellOptions", {"type": "color-text"})]),
                       ("Value #B", [prop("displayName", "Objective"), prop("unit", "percentunit"), prop("decimals", 2)]),
                       ("Value #C", [prop("displayName", f"SLI ({cfg.slo_window})"), prop("unit", "percentunit"), prop("decimals", 3)]),
                       ("Value #D", [prop("displayName", "Burn rate (1h)"), prop("unit", "suffix:×")]),
                       ("Value #E", [prop("displayName", "Budget gone in"), prop("unit", "s"),
                                     prop("mappings", [{"type": "value", "options": {str(YEAR): {"text": "not at this rate"}}},
                                                       {"type": "special", "options": {"match": "nan", "result": {"text": "no traffic"}}}])]),
                       ("Value #F", [prop("displayName", "Burn alert"), prop("mappings", alert_state)]),
                       *slo_links()])
              .sort_by([_Built(cm.TableSortByFieldState(display_name="Budget left", desc=False))]), 0, 4, 24, 10),
        place(table_panel(
            "Burn rate per window", "How fast each SLO series burns its error budget over every window the alerts read (1: the "
            f"budget lasts exactly the {cfg.slo_window} window). Pages: 14.4 over 1h and 5m, or 6 over 6h and 30m; tickets: 3 "
            "over 1d and 2h, or 1 over 3d and 6h.", "suffix:×",
            *(query(burn_rate(window, cfg), ref=chr(ord("A") + index), instant=True, as_table=True) for index, window in enumerate(windows)),
            overrides=[*((f"Value #{chr(ord('A') + index)}", [prop("displayName", window)]) for index, window in enumerate(windows)),
                       *slo_links()]).thresholds(thresholds((None, "green"), (1, "orange"), (6, "red"))), 0, 14, 24, 8),
        place(series_panel("SLI against objective", f"The share of good events over the {cfg.slo_window} window per SLO series, "
                           "and each SLO's objective: below its objective, an SLO is missed.", "percentunit",
                           query(f"1 - max by ({SLO_BY}) (slo:sli_error:ratio_rate{cfg.slo_window}{{{SLO_F}}})", SLO_LEGEND),
                           query(f"max by (sloth_slo) (group by (sloth_id, sloth_slo) ({REMAINING}) * on (sloth_id) group_left slo:objective:ratio)",
                                 "{{sloth_slo}} objective", "B")), 0, 22, 12, 8),
        place(series_panel("Error budget left", f"The share of each SLO series' error budget left over the {cfg.slo_window} window "
                           "(while there is less data than a window, over the data there is).", "percentunit",
                           query(f"max by ({SLO_BY}) ({REMAINING})", SLO_LEGEND)), 12, 22, 12, 8),
        place(series_panel("Burn rate (1 hour)", "How fast each SLO series burns its error budget over the last hour: above 1 it "
                           f"is gone before the {cfg.slo_window} window ends.", "suffix:×",
                           query(burn_rate("1h"), SLO_LEGEND)), 0, 30, 12, 8),
        place(db.Panel().type("alertlist").title("Burn alerts")
              .description("Burn-rate alerts pending or firing (via the Alertmanager data source): Sollol*FastBurn pages, "
                           "Sollol*SlowBurn opens a ticket.").unit("none")
              .options({"alertInstanceLabelFilter": f'{{sloth_service="{cfg.slo_service}"}}', "datasource": "${alertmanager}",
                        "groupMode": "default", "maxItems": 20, "sortOrder": 1,
                        "stateFilter": {"firing": True, "pending": True, "normal": False}, "viewMode": "list"}), 12, 30, 12, 8)
        .datasource(ALERTMANAGER),
    ]
    for panel in panels:
        dash = dash.with_panel(panel)
    return dash


def exporter_health(cfg: Config) -> db.Dashboard:
    dash = variables(base(cfg, "sollol-exporter", "Is the exporter itself reading every source, and within its scrape budget?"), cfg)
    i = cfg.instance_label
    panels = [
        place(timeline_panel("Collector success", "Per collector: OK when it read its source without error in a scrape.",
                             "max by (collector) (sollol_exporter_collector_success)", "{{collector}}",
                             {"1": ("OK", "green"), "0": ("FAILING", "red")}), 0, 0, 24, 7),
        place(series_panel("Collector duration", "Time each collector took per scrape.", "s",
                           query("max by (collector) (sollol_exporter_collector_duration_seconds)", "{{collector}}")), 0, 7, 12, 8),
        place(series_panel("Scrape budget used", "Slowest collector as a share of the scrape's time budget.", "percentunit",
                           query(f"max by ({i}) (sollol_exporter_collector_duration_seconds) / on ({i}) max by ({i}) (sollol_exporter_scrape_timeout_seconds)",
                                 f"{{{{{i}}}}}")), 12, 7, 12, 8),
        place(series_panel("Malformed entries", "Entries skipped per scrape because they were malformed.", "none",
                           query("sum by (collector) (sollol_exporter_invalid_entries)", "{{collector}}")), 0, 15, 12, 7),
        place(series_panel("Exporter memory", "Resident memory of the exporter process.", "bytes",
                           query(f"max by ({i}) (process_resident_memory_bytes)", f"{{{{{i}}}}}")), 12, 15, 12, 7),
        place(timeline_panel("Event subscriber", "SUBSCRIBED while the exporter holds its subscription to SOLLOL's activity "
                             "channels; events published while it is not are never counted.",
                             f"max by ({i}) (sollol_events_subscribed)", f"{{{{{i}}}}}",
                             {"1": ("SUBSCRIBED", "green"), "0": ("NOT SUBSCRIBED", "red")}), 0, 22, 24, 5),
        place(series_panel("Events received per second", "Messages per second on each of SOLLOL's channels (ollama, rpc, traces).", "ops",
                           query("sum by (channel) (rate(sollol_events_received_total[$__rate_interval]))", "{{channel}}")), 0, 27, 12, 8),
        place(series_panel("Invalid events per second", "Messages per channel that were not a SOLLOL event (bad JSON, too large "
                           "or deep, unknown type): counted and skipped.", "ops",
                           query("sum by (channel) (rate(sollol_events_invalid_total[$__rate_interval]))", "{{channel}}")), 12, 27, 12, 8),
        place(series_panel("Time since the last event", "How long ago each channel last carried a message: silence while SOLLOL "
                           "serves means it stopped publishing, or the subscription is broken.", "s",
                           query("time() - max by (channel) (sollol_events_last_received_timestamp_seconds)", "{{channel}}")), 0, 35, 12, 7),
        place(series_panel("Label values folded", "Events whose node, model or coordinator was counted as \"other\" because the "
                           "label reached its cap of distinct values.", "none",
                           query("sum by (label) (increase(sollol_events_label_values_folded_total[$__rate_interval]))", "{{label}}")), 12, 35, 12, 7),
        place(table_panel("Targets", "Every Redis, coordinator and dashboard address the exporter knows of: EXPECTED (named in "
                          "the config, announced by SOLLOL, or answered since the exporter started) or ABSENT (a default "
                          "address where nothing was ever found: it has no _up series and raises no alert).", "none",
                          query("max by (kind, target) (sollol_exporter_target_expected)", instant=True, as_table=True),
                          mappings=mapping({"1": ("EXPECTED", "green"), "0": ("ABSENT", "text")}),
                          overrides=[("Value", [prop("displayName", "State")])]), 0, 42, 24, 7),
        place(series_panel("Entries dropped by caps", "Entries each collector left out this scrape because one of the exporter's "
                           "caps was reached (keys per prefix, devices per node, applications; see the README).", "none",
                           query("sum by (collector) (sollol_exporter_dropped_entries)", "{{collector}}")), 0, 49, 12, 7),
        place(stat_panel("Configuration", "Whether the last config (re)load worked, and how long ago a config last loaded.", "none",
                         query(f"min by ({i}) (sollol_exporter_config_last_reload_successful)", "last reload", instant=True),
                         query(f"time() - max by ({i}) (sollol_exporter_config_last_reload_success_timestamp_seconds)", "loaded", "B", instant=True),
                         mappings=mapping({"1": ("OK", "green"), "0": ("FAILED", "red")}))
              .override_by_query("B", [prop("unit", "s"), prop("mappings", [])]), 12, 49, 6, 7),
        place(stat_panel("Dashboard service", "Which server answers on SOLLOL's dashboard address: dashboard_service, "
                         "unified_dashboard or legacy_dashboard.", "none",
                         query("max by (kind) (sollol_dashboard_info)", "{{kind}}", instant=True)).text_mode(cm.BigValueTextMode.NAME), 18, 49, 6, 7),
        place(stat_panel("Routing stream", "sollol:routing_stream as the exporter reads it: entries (XLEN), time since the newest "
                         "routing event, entries that were not routing events, and events whose type or node was folded into "
                         "\"other\" (per second).", "none",
                         query("max(sollol_routing_stream_entries)", "entries", instant=True),
                         query("time() - max(sollol_routing_last_event_timestamp_seconds)", "since the last event", "B", instant=True),
                         query("sum(rate(sollol_routing_invalid_events_total[$__rate_interval]))", "invalid", "C", instant=True),
                         query("sum(rate(sollol_routing_label_values_folded_total[$__rate_interval]))", "folded", "D", instant=True))
              .override_by_query("B", [prop("unit", "s")]).override_by_query("C", [prop("unit", "ops")])
              .override_by_query("D", [prop("unit", "ops")]), 0, 56, 16, 5),
        place(series_panel("Subscription losses", "Established subscriptions to SOLLOL's channels that ended (Redis closed or "
                           "restarted, or stopped answering): the events published until the exporter subscribed again are "
                           "missing from the request counts, and from the SLOs, of that time.", "none",
                           query(f"sum by ({i}) (increase(sollol_events_subscription_losses_total[$__rate_interval]))", f"{{{{{i}}}}}")),
              16, 56, 8, 5),
    ]
    for panel in panels:
        dash = dash.with_panel(panel)
    return dash


# Metric names the dashboards query: the exporter's (sollol_*), the process and `up` series of its scrape job; the
# recording rules (level:sollol_metric:operations, and the SLOs' slo:* series per node, model, coordinator or
# application) and the alerts (ALERTS), which carry the cluster label but not the job's; and the SLOs' constants
# (objective, error budget, period, Sloth's info series), one per SLO with no cluster label at all, as Sloth writes them.
_RECORDED = re.compile(r"[a-z_]+:sollol_\w+:\w+|slo:(?:sli_error|current_burn_rate|period_burn_rate|period_error_budget_remaining):\w+|ALERTS")
_CONSTANT = re.compile(r"slo:(?:objective|error_budget|time_period):\w+|sloth_slo_info")
_RAW = re.compile(r"sollol_\w+|process_\w+|up")
_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`|\$\{?\w+(?::\w+)?\}?|\[[^\]]*\]|\d[\w.]*|[A-Za-z_:][\w:]*|.', re.S)


def scope(expr: str, cfg: Config) -> str:
    """`expr` with the job selector and `<cluster label>=~"$cluster"` as the first matchers of every selector of one of
    our series, the cluster matcher alone on recording-rule and alert series, nothing on the SLO constants. Strings,
    durations and Grafana variables are copied as they are; a selector with no metric name (`{__name__=~"..."}`) is
    one of the exporter's series."""
    raw, recorded = cfg.sel(f'{cfg.cluster_label}=~"$cluster"'), f'{cfg.cluster_label}=~"$cluster"'
    out: list[str] = []
    tokens = [m.group() for m in _TOKEN.finditer(expr)]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        follows = i + 1 < len(tokens) and tokens[i + 1] == "{"
        if _CONSTANT.fullmatch(token):
            out.append(token + ("{" if follows else ""))
            i += 2 if follows else 1
            continue
        matchers = recorded if _RECORDED.fullmatch(token) else raw if _RAW.fullmatch(token) else None
        if matchers is not None:
            out.append(token)
            if follows:
                i += 1
                token = "{"
            else:
                out.append("{" + matchers + "}")
                i += 1
                continue
        if token == "{":
            matchers = matchers or raw
            closing = i + 1 < len(tokens) and tokens[i + 1] == "}"
            out.append("{" + matchers + ("" if closing else ","))
        else:
            out.append(token)
        i += 1
    return "".join(out)


def _scope_dashboard(model: dict, cfg: Config) -> dict:
    for panel in model.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                if "expr" in target:
                    target["expr"] = scope(target["expr"], cfg)
    for annotation in model.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            annotation["expr"] = scope(annotation["expr"], cfg)
    for variable in model.get("templating", {}).get("list", []):
        if variable.get("type") == "query" and variable["name"] != "cluster":
            variable["query"] = scope(variable["query"], cfg)
    return model


DASHBOARDS = {"sollol-overview.json": overview, "sollol-slo.json": slo_dashboard, "sollol-inference.json": inference,
              "sollol-requests.json": requests_dashboard,
              "sollol-exporter.json": exporter_health}


def build(config: Config | None = None) -> dict[str, dict]:
    """Every dashboard, file name -> dashboard JSON, for `config` (default: the shipped stack's)."""
    cfg = config or Config()
    built = {}
    for name, make in DASHBOARDS.items():
        model = make(cfg).build()
        for index, panel in enumerate(model.panels or [], start=1):
            panel.id_val = index
        built[name] = _scope_dashboard(json.loads(JSONEncoder().encode(model)), cfg)
    return built


def render(config: Config | None = None) -> dict[str, str]:
    """Every dashboard as the text of its file."""
    return {name: json.dumps(model, sort_keys=True, indent=2) + "\n" for name, model in build(config).items()}


SETTABLE = ("job_selector", "cluster_label", "instance_label", "dashboard_refresh", "dashboard_tags", "slo_window")


def config_from(settings: list[str]) -> Config:
    changes: dict[str, object] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or key not in SETTABLE:
            raise SystemExit(f"--set takes KEY=VALUE with KEY one of {', '.join(SETTABLE)}")
        changes[key] = tuple(t for t in value.split(",") if t) if key == "dashboard_tags" else value
    return Config().replace(**changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file in the output directory differs from the code")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a mixin setting, one of {', '.join(SETTABLE)} (dashboard_tags: comma-separated)")
    parser.add_argument("--out", type=Path, default=OUT, help="directory to write to (default grafana/dashboards)")
    args = parser.parse_args(argv)
    drift = []
    for name, text in render(config_from(args.set)).items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                drift.append(name)
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if drift:
        print("out of date, run grafana/generate.py: " + ", ".join(drift), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
