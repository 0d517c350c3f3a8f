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

from mixin.config import Config  # noqa: E402

from grafana_foundation_sdk.builders import dashboard as db  # noqa: E402
from grafana_foundation_sdk.builders import prometheus as prom  # noqa: E402
from grafana_foundation_sdk.builders import heatmap, stat, statetimeline, table, timeseries  # noqa: E402
from grafana_foundation_sdk.cog.encoder import JSONEncoder  # noqa: E402
from grafana_foundation_sdk.models import common as cm  # noqa: E402
from grafana_foundation_sdk.models import dashboard as dm  # noqa: E402
from grafana_foundation_sdk.models import heatmap as hm  # noqa: E402
from grafana_foundation_sdk.models.prometheus import PromQueryFormat  # noqa: E402

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
TITLES = {"sollol-overview": "SOLLOL overview", "sollol-inference": "SOLLOL inference cluster",
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


def overview(cfg: Config) -> db.Dashboard:
    dash = variables(base(cfg, "sollol-overview", "The cluster at a glance: what SOLLOL's own dashboard tried to show, from real probes."),
                     cfg, "coordinator", "backend", "node", alerts=True)
    panels = [
        place(stat_panel("System status", "HEALTHY when every part this cluster has is up: Redis, the selected coordinators, RPC "
                         "workers and Ollama nodes, and SOLLOL's dashboard service; DEGRADED when one is down. Parts the "
                         "exporter does not expect (a default address where nothing was ever found) are left out; "
                         "NOTHING FOUND when it reports no part at all.", "none",
                         query(f"min({PARTS_UP})", instant=True),
                         mappings=mapping({"1": ("HEALTHY", "green"), "0": ("DEGRADED", "red")})).no_value("NOTHING FOUND"), 0, 0, 4, 4),
        place(stat_panel("Active applications", "Applications heartbeating SOLLOL's dashboard.", "none",
                         query("sum(sollol_application_up)", instant=True)), 4, 0, 4, 4),
        place(stat_panel("Active hosts", "Ollama nodes answering the exporter's probe, out of all known nodes.", "none",
                         query(f"sum(sollol_ollama_node_up{{{N}}})", "up", instant=True),
                         query(f"count(sollol_ollama_node_up{{{N}}})", "total", "B", instant=True)), 8, 0, 4, 4),
        place(stat_panel("Average latency (SOLLOL's own view)",
                         "Mean request duration since the router started, as SOLLOL's routers report it (not a rate; "
                         "the SOLLOL requests dashboard has latency from the exporter's own histograms).", "s",
                         query("avg(sollol_router_average_duration_seconds)", instant=True)), 12, 0, 4, 4),
        place(stat_panel("Success rate (SOLLOL's own view)",
                         "Successful / total requests since the router started, as SOLLOL's routers report it.", "percentunit",
                         query("avg(sollol_router_success_ratio)", instant=True)), 16, 0, 4, 4),
        place(stat_panel("GPU memory used", "GPU memory in use on all nodes with a GPU reporter.", "bytes",
                         query(f"sum(sollol_gpu_memory_used_bytes{{{N}}})", instant=True)), 20, 0, 4, 4),
        place(table_panel("Applications", "Applications registered with SOLLOL's dashboard: name, router type and uptime.", "s",
                          query("max by (app, router_type) (sollol_application_uptime_seconds)", instant=True, as_table=True)), 0, 4, 12, 8),
        place(table_panel(
            "Ollama hosts", "Per node: probe result, probe latency, SOLLOL's success ratio, requests in flight and model memory on the GPU.", "none",
            query(f"max by (node) (sollol_ollama_node_up{{{N}}})", ref="A", instant=True, as_table=True),
            query(f"max by (node) (sollol_ollama_node_probe_duration_seconds{{{N}}})", ref="B", instant=True, as_table=True),
            query(f"max by (node) (sollol_ollama_node_success_ratio{{{N}}})", ref="C", instant=True, as_table=True),
            query(f"max by (node) (sollol_ollama_node_active_requests{{{N}}})", ref="D", instant=True, as_table=True),
            query(f"sum by (node) (sollol_ollama_model_vram_bytes{{{N}}})", ref="E", instant=True, as_table=True),
            mappings=None,
            overrides=[("Value #A", [prop("displayName", "Up"), prop("mappings", [{"type": "value", "options": {"1": {"text": "UP", "color": "green"}, "0": {"text": "DOWN", "color": "red"}}}])]),
                       ("Value #B", [prop("displayName", "Probe latency"), prop("unit", "s")]),
                       ("Value #C", [prop("displayName", "Success rate"), prop("unit", "percentunit")]),
                       ("Value #D", [prop("displayName", "Active requests"), prop("unit", "none")]),
                       ("Value #E", [prop("displayName", "Model VRAM"), prop("unit", "bytes")]),
                       ("node", [prop("links", [data_link("Requests to ${__data.fields.node}", "sollol-requests", "node", "node"),
                                                data_link("Load and GPUs of ${__data.fields.node}", "sollol-inference", "node", "node")])])]), 12, 4, 12, 8),
        place(table_panel(
            "RPC backends", "llama.cpp rpc-server workers: state by the exporter's rule (busy = held by its coordinator) and probe latency.", "none",
            query(RPC_STATE_CODE, ref="A", instant=True, as_table=True),
            query(f"max by (backend) (sollol_rpc_backend_probe_duration_seconds{{{B}}})", ref="B", instant=True, as_table=True),
            mappings=mapping(RPC_STATES),
            overrides=[("Value #A", [prop("displayName", "State")]),
                       ("Value #B", [prop("displayName", "Probe latency"), prop("unit", "s")]),
                       ("backend", [prop("links", [data_link("Worker ${__data.fields.backend} over time", "sollol-inference", "backend", "backend")])])]), 0, 12, 12, 8),
        place(db.Panel().type("alertlist").title("Active alerts")
              .description("Alerts firing in Prometheus (via the Alertmanager data source).").unit("none")
              .options({"alertInstanceLabelFilter": "", "datasource": "${alertmanager}", "groupMode": "default",
                        "maxItems": 20, "sortOrder": 1, "stateFilter": {"firing": True, "pending": True, "normal": False},
                        "viewMode": "list"}), 12, 12, 12, 8).datasource(ALERTMANAGER),
        place(stat_panel("Task types learned", "Distinct task types SynapticLlamas' router has seen.", "none",
                         query("count(sollol_router_task_type_requests_total)", instant=True)), 0, 20, 6, 8),
        place(table_panel("Requests per task type", "Requests per detected task type (SynapticLlamas).", "none",
                          query("sum by (task_type) (sollol_router_task_type_requests_total)", instant=True, as_table=True)), 6, 20, 6, 8),
        place(series_panel("Routing events by type", "Routing decisions read from sollol:routing_stream, per second.", "ops",
                           query("sum by (event_type) (rate(sollol_routing_events_total[$__rate_interval]))", "{{event_type}}")), 12, 20, 12, 8),
        # What SOLLOL actually served, from its activity events (recording rules, 5 minute windows).
        place(series_panel("Requests per second per node", "Requests SOLLOL sent to each Ollama node, by its activity events, "
                           "averaged over 5 minutes (recording rule node:sollol_requests:rate5m).", "reqps",
                           query(f"sum by (node) (node:sollol_requests:rate5m{{{N}}})", "{{node}}")), 0, 28, 8, 8),
        place(series_panel("Error ratio per node", "Share of each node's requests that failed over 5 minutes "
                           "(recording rule node:sollol_request_errors:ratio_rate5m).", "percentunit",
                           query(f"max by (node) (node:sollol_request_errors:ratio_rate5m{{{N}}})", "{{node}}")), 8, 28, 8, 8),
        place(series_panel("p95 latency per model", "95th percentile of successful unary (not streamed) requests per model over "
                           "5 minutes, from the exporter's histograms (recording rule model:sollol_request_duration_seconds:quantile_rate5m).", "s",
                           query(f'max by (model) (model:sollol_request_duration_seconds:quantile_rate5m{{quantile="0.95",{UNARY}}})', "{{model}}")), 16, 28, 8, 8),
        place(series_panel("RPC workers up", "Share of the RPC workers answering their probe: per selected coordinator, of the workers "
                           "it drives (recording rule coordinator:sollol_rpc_backend_up:ratio), and of all workers of the cluster "
                           "(cluster:sollol_rpc_backend_up:ratio, not filtered by worker).", "percentunit",
                           query(f"max by (coordinator) (coordinator:sollol_rpc_backend_up:ratio{{{C}}})", "{{coordinator}}"),
                           query("max(cluster:sollol_rpc_backend_up:ratio)", "all workers", "B")), 0, 36, 24, 8),
    ]
    for panel in panels:
        dash = dash.with_panel(panel)
    return dash


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
        place(series_panel("Worker device memory", "Memory per RPC worker device from the ggml handshake, and GPU memory registered by SOLLOL's scripts.", "bytes",
                           query(f"sum by (backend, device) (sollol_rpc_backend_device_memory_total_bytes{{{B}}} - sollol_rpc_backend_device_memory_free_bytes{{{B}}})", "{{backend}} dev{{device}} used"),
                           query(f"sum by (backend, gpu) (sollol_rpc_node_gpu_memory_bytes{{{B}}})", "{{backend}} gpu{{gpu}} registered", "B")), 8, 27, 8, 8),
        place(series_panel("GPU utilisation", "GPU utilisation per node and GPU.", "percentunit",
                           query(f"max by (node, gpu) (sollol_gpu_utilization_ratio{{{N}}})", "{{node}} gpu{{gpu}}")), 16, 27, 8, 8),
        place(series_panel("Router metadata age", "Age of sollol:router:metadata: how long ago its writer last refreshed it.", "s",
                           query("max(sollol_metadata_age_seconds)", "age")), 0, 35, 12, 6),
        place(series_panel("Coordinator probe latency", "Time the coordinator probe (/health, /metrics) took.", "s",
                           query(f"max by (coordinator) (sollol_coordinator_probe_duration_seconds{{{C}}})", "{{coordinator}}")), 12, 35, 12, 6),
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
                  f"{{{{{by}}}}} p{q[2:].ljust(2, '0')}", ref) for q, ref in zip(QUANTILES, "ABC")]


def recorded_table(by: str, filter_: str, title: str, description: str, links: list[dict[str, object]]):
    columns = [(f"sum by ({by}) ({by}:sollol_requests:rate5m{{{filter_}}})", "Requests/s", "reqps"),
               (f"max by ({by}) ({by}:sollol_request_errors:ratio_rate5m{{{filter_}}})", "Error ratio", "percentunit")]
    columns += [(f'max by ({by}) ({by}:sollol_request_duration_seconds:quantile_rate5m{{quantile="{q}",{UNARY},{filter_}}})',
                 f"p{q[2:].ljust(2, '0')}", "s") for q in QUANTILES]
    refs = "ABCDE"
    return table_panel(title, description, "none",
                       *(query(expr, ref=ref, instant=True, as_table=True) for (expr, _, _), ref in zip(columns, refs)),
                       overrides=[*((f"Value #{ref}", [prop("displayName", name), prop("unit", unit)])
                                    for (_, name, unit), ref in zip(columns, refs)),
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
                           query(f"sum by (node, reason) (rate(sollol_request_errors_total{{{N},{M}}}[$__rate_interval]))", "{{node}} {{reason}}")), 0, 20, 8, 9),
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
                           query(f"sum by (coordinator, model, outcome) (rate({cr}[$__rate_interval]))", "{{coordinator}} {{model}} {{outcome}}")), 8, 37, 8, 8),
        place(series_panel("Completion tokens per second per model", "Completion tokens per second per coordinator and model over "
                           "5 minutes (recording rule), where SOLLOL's events carry them.", "suffix: tok/s",
                           query("sum by (coordinator, model) (coordinator_model:sollol_coordinator_completion_tokens:rate5m"
                                 f"{{{C},{M}}})", "{{coordinator}} {{model}}")), 16, 37, 8, 8),
        place(series_panel("RPC workers per coordinator (heartbeats)", "RPC workers in use and configured, as the coordinator's last "
                           "heartbeat said (rpc_registry: SOLLOL's registry; its checks are TCP connects).", "none",
                           query(f"max by (coordinator) (sollol_coordinator_rpc_backends_active{{{C}}})", "{{coordinator}} active"),
                           query(f"max by (coordinator) (sollol_coordinator_rpc_backends_configured{{{C}}})", "{{coordinator}} configured", "B")), 0, 45, 12, 8),
        place(series_panel("Latency percentiles (SOLLOL's own view)", "p50/p95/p99 as SOLLOL's routers report them: over their "
                           "last 1,000 requests, since they started, not per node or model; compare with the histograms above.", "s",
                           query('max by (source, quantile) (sollol_router_latency_seconds{quantile=~".+"})', "{{source}} q{{quantile}}")), 12, 45, 12, 8),
        place(table_panel(
            "Coordinators over the last 5 minutes", "Per coordinator and model: request rate, p95 latency of successful requests "
            "and completion tokens per second, from the recording rules (5 minute windows).", "none",
            query(f"sum by (coordinator, model) (coordinator_model:sollol_coordinator_requests:rate5m{{{C},{M}}})", ref="A", instant=True, as_table=True),
            query("max by (coordinator, model) (coordinator_model:sollol_coordinator_request_duration_seconds:quantile_rate5m"
                  f'{{quantile="0.95",{C},{M}}})', ref="B", instant=True, as_table=True),
            query(f"sum by (coordinator, model) (coordinator_model:sollol_coordinator_completion_tokens:rate5m{{{C},{M}}})", ref="C", instant=True, as_table=True),
            overrides=[("Value #A", [prop("displayName", "Requests/s"), prop("unit", "reqps")]),
                       ("Value #B", [prop("displayName", "p95"), prop("unit", "s")]),
                       ("Value #C", [prop("displayName", "Completion tokens/s"), prop("unit", "suffix: tok/s")]),
                       ("coordinator", [prop("links", [data_link("Coordinator ${__data.fields.coordinator} and its workers",
                                                                 "sollol-inference", "coordinator", "coordinator")])])]), 0, 53, 24, 8),
    ]
    for panel in panels:
        dash = dash.with_panel(panel)
    return dash.annotation(lifecycle_annotation())


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
                           query(f"max by ({i}) (sollol_exporter_collector_duration_seconds) / on ({i}) max by ({i}) (sollol_exporter_scrape_timeout_seconds)", f"{{{{{i}}}}}")), 12, 7, 12, 8),
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
    ]
    for panel in panels:
        dash = dash.with_panel(panel)
    return dash


# Metric names the dashboards query: the exporter's (sollol_*), the process and `up` series of its scrape job, and the
# recording rules (level:sollol_metric:operations), which carry the cluster label but not the job's.
_RECORDED = re.compile(r"[a-z_]+:sollol_\w+:\w+")
_RAW = re.compile(r"sollol_\w+|process_\w+|up")
_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`|\$\{?\w+(?::\w+)?\}?|\[[^\]]*\]|\d[\w.]*|[A-Za-z_:][\w:]*|.', re.S)


def scope(expr: str, cfg: Config) -> str:
    """`expr` with the job selector and `<cluster label>=~"$cluster"` as the first matchers of every selector of one of
    our series, and the cluster matcher alone on recording-rule series. Strings, durations and Grafana variables are
    copied as they are; a selector with no metric name (`{__name__=~"..."}`) is one of the exporter's series."""
    raw, recorded = cfg.sel(f'{cfg.cluster_label}=~"$cluster"'), f'{cfg.cluster_label}=~"$cluster"'
    out: list[str] = []
    tokens = [m.group() for m in _TOKEN.finditer(expr)]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        matchers = recorded if _RECORDED.fullmatch(token) else raw if _RAW.fullmatch(token) else None
        if matchers is not None:
            out.append(token)
            if i + 1 < len(tokens) and tokens[i + 1] == "{":
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


DASHBOARDS = {"sollol-overview.json": overview, "sollol-inference.json": inference, "sollol-requests.json": requests_dashboard,
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


SETTABLE = ("job_selector", "cluster_label", "instance_label", "dashboard_refresh", "dashboard_tags")


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
