#!/usr/bin/env python3
"""Dashboards as code: writes grafana/dashboards/*.json from the definitions below (grafana-foundation-sdk).

    .venv/bin/python grafana/generate.py            # rewrite the JSON files
    .venv/bin/python grafana/generate.py --check    # exit 1 if the committed JSON differs from the code

The generated JSON is committed; a test fails when it drifts from this file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
ALERTMANAGER = dm.DataSourceRef(type_val="alertmanager", uid="${alertmanager}")
TAGS = ["sollol"]
C, B, N = 'coordinator=~"$coordinator"', 'backend=~"$backend"', 'node=~"$node"'

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
    '(sollol_coordinator_state{state=~"hung|unreachable|error",' + C + '} == 1) * 0 + 4)'
)
COORDINATOR_STATES = {"1": ("OK", "green"), "2": ("LOADING", "blue"), "3": ("STALLED", "orange"), "4": ("DOWN", "red")}


def mapping(states: dict[str, tuple[str, str]]) -> list[dm.ValueMap]:
    return [dm.ValueMap(options={value: dm.ValueMappingResult(text=text, color=color, index=i)
                                 for i, (value, (text, color)) in enumerate(states.items())})]


def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False, as_table: bool = False) -> prom.Dataquery:
    q = prom.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    if as_table:
        q = q.format(PromQueryFormat.TABLE)
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


def prop(name, value):
    return dm.DynamicConfigValue(id_val=name, value=value)


def variables(dash: db.Dashboard, *names: str, alerts: bool = False) -> db.Dashboard:
    dash = dash.with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    if alerts:
        dash = dash.with_variable(db.DatasourceVariable("alertmanager").label("Alertmanager").type("alertmanager"))
    labels = {"coordinator": "sollol_coordinator_up", "backend": "sollol_rpc_backend_up", "node": "sollol_ollama_node_up"}
    for name in names:
        dash = dash.with_variable(
            db.QueryVariable(name).label(name.capitalize()).datasource(DATASOURCE)
            .query(f"label_values({labels[name]}, {name})")
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).include_all(True).multi(True).all_value(".*")
            .current(dm.VariableOption(selected=True, text="All", value="$__all"))
        )
    return dash


def base(uid: str, title: str, description: str) -> db.Dashboard:
    return (db.Dashboard(title).uid(uid).description(description).tags(TAGS).refresh("30s")
            .time("now-1h", "now").timezone("browser").editable())


def overview() -> db.Dashboard:
    dash = variables(base("sollol-overview", "SOLLOL overview", "The cluster at a glance: what SOLLOL's own dashboard tried to show, from real probes."),
                     "coordinator", "backend", "node", alerts=True)
    panels = [
        place(stat_panel("System status", "HEALTHY when Redis, every selected coordinator and every selected RPC worker are up.", "none",
                         query(f'min(sollol_redis_up) * min(sollol_coordinator_up{{{C}}}) * min(sollol_rpc_backend_up{{{B}}})', instant=True),
                         mappings=mapping({"1": ("HEALTHY", "green"), "0": ("DEGRADED", "red")})), 0, 0, 4, 4),
        place(stat_panel("Active applications", "Applications heartbeating SOLLOL's dashboard.", "none",
                         query("sum(sollol_application_up)", instant=True)), 4, 0, 4, 4),
        place(stat_panel("Active hosts", "Ollama nodes answering the exporter's probe, out of all known nodes.", "none",
                         query(f"sum(sollol_ollama_node_up{{{N}}})", "up", instant=True),
                         query(f"count(sollol_ollama_node_up{{{N}}})", "total", "B", instant=True)), 8, 0, 4, 4),
        place(stat_panel("Average latency", "Mean request duration reported by SOLLOL's routers.", "s",
                         query("avg(sollol_router_average_duration_seconds)", instant=True)), 12, 0, 4, 4),
        place(stat_panel("Success rate", "Successful / total requests reported by SOLLOL's routers.", "percentunit",
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
                       ("Value #E", [prop("displayName", "Model VRAM"), prop("unit", "bytes")])]), 12, 4, 12, 8),
        place(table_panel(
            "RPC backends", "llama.cpp rpc-server workers: state by the exporter's rule (busy = held by its coordinator) and probe latency.", "none",
            query(RPC_STATE_CODE, ref="A", instant=True, as_table=True),
            query(f"max by (backend) (sollol_rpc_backend_probe_duration_seconds{{{B}}})", ref="B", instant=True, as_table=True),
            mappings=mapping(RPC_STATES),
            overrides=[("Value #A", [prop("displayName", "State")]),
                       ("Value #B", [prop("displayName", "Probe latency"), prop("unit", "s")])]), 0, 12, 12, 8),
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
    ]
    for panel in panels:
        dash = dash.with_panel(panel)
    return dash


def inference() -> db.Dashboard:
    dash = variables(base("sollol-inference", "SOLLOL inference cluster", "llama.cpp coordinators, their RPC workers, Ollama nodes and GPUs over time."),
                     "coordinator", "backend", "node")
    panels = [
        place(timeline_panel("Coordinator state", "llama-server state per coordinator: OK, LOADING (model loading), STALLED (/metrics timing out), DOWN.",
                             COORDINATOR_STATE_CODE, "{{coordinator}}", COORDINATOR_STATES), 0, 0, 24, 5),
        place(series_panel("Generated tokens per second", "Tokens generated per second, from llama-server's counters.", "suffix: tok/s",
                           query(f"sum by (coordinator) (rate(sollol_coordinator_tokens_predicted_total{{{C}}}[$__rate_interval]))", "{{coordinator}}")), 0, 5, 8, 8),
        place(series_panel("Prompt tokens per second", "Prompt tokens processed per second.", "suffix: tok/s",
                           query(f"sum by (coordinator) (rate(sollol_coordinator_prompt_tokens_total{{{C}}}[$__rate_interval]))", "{{coordinator}}")), 8, 5, 8, 8),
        place(series_panel("Request queue", "Requests being processed and requests deferred, waiting for a slot (queue depth).", "none",
                           query(f"sum by (coordinator) (sollol_coordinator_requests_processing{{{C}}})", "{{coordinator}} processing"),
                           query(f"sum by (coordinator) (sollol_coordinator_requests_deferred{{{C}}})", "{{coordinator}} deferred", "B")), 16, 5, 8, 8),
        place(timeline_panel("RPC backend state", "Worker state by the exporter's rule: HEALTHY, BUSY (held by its coordinator), OFFLINE, UNREACHABLE.",
                             RPC_STATE_CODE, "{{backend}}", RPC_STATES), 0, 13, 24, 6),
        place(series_panel("RPC probe latency", "Time the exporter's probe of each worker took (connect, or handshake/gRPC where configured).", "s",
                           query(f"max by (backend) (sollol_rpc_backend_probe_duration_seconds{{{B}}})", "{{backend}}")), 0, 19, 12, 8),
        place(series_panel("Load distribution across Ollama nodes", "Requests per second SOLLOL sends to each node, and routing selections.", "reqps",
                           query(f"sum by (node) (rate(sollol_ollama_node_requests_total{{{N}}}[$__rate_interval]))", "{{node}} requests"),
                           query(f"sum by (node) (rate(sollol_routing_node_selections_total{{{N}}}[$__rate_interval]))", "{{node}} selected", "B")), 12, 19, 12, 8),
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
    return dash


def exporter_health() -> db.Dashboard:
    dash = variables(base("sollol-exporter", "SOLLOL exporter health", "Is the exporter itself reading every source, and within its scrape budget?"))
    panels = [
        place(timeline_panel("Collector success", "Per collector: OK when it read its source without error in a scrape.",
                             "max by (collector) (sollol_exporter_collector_success)", "{{collector}}",
                             {"1": ("OK", "green"), "0": ("FAILING", "red")}), 0, 0, 24, 7),
        place(series_panel("Collector duration", "Time each collector took per scrape.", "s",
                           query("max by (collector) (sollol_exporter_collector_duration_seconds)", "{{collector}}")), 0, 7, 12, 8),
        place(series_panel("Scrape budget used", "Slowest collector as a share of the scrape's time budget.", "percentunit",
                           query("max by (instance) (sollol_exporter_collector_duration_seconds) / on (instance) max by (instance) (sollol_exporter_scrape_timeout_seconds)", "{{instance}}")), 12, 7, 12, 8),
        place(series_panel("Malformed entries", "Entries skipped per scrape because they were malformed.", "none",
                           query("sum by (collector) (sollol_exporter_invalid_entries)", "{{collector}}")), 0, 15, 12, 7),
        place(series_panel("Exporter memory", "Resident memory of the exporter process.", "bytes",
                           query('max by (instance) (process_resident_memory_bytes{job="sollol"})', "{{instance}}")), 12, 15, 12, 7),
    ]
    for panel in panels:
        dash = dash.with_panel(panel)
    return dash


DASHBOARDS = {"sollol-overview.json": overview, "sollol-inference.json": inference, "sollol-exporter.json": exporter_health}


def render(builder: db.Dashboard) -> str:
    model = builder.build()
    for index, panel in enumerate(model.panels or [], start=1):
        panel.id_val = index
    return JSONEncoder(sort_keys=True, indent=2).encode(model) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs from the code")
    args = parser.parse_args()
    drift = []
    for name, make in DASHBOARDS.items():
        text = render(make())
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                drift.append(name)
        else:
            path.write_text(text)
    if drift:
        print("out of date, run grafana/generate.py: " + ", ".join(drift), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
