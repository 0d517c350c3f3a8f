"""SOLLOL overview: the cluster at a glance, and every part of it in tables."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from mixin.config import Config
from mixin.dashboards.inference import gpu_temperature
from mixin.dashboards.panels import (
    ALERTMANAGER,
    Column,
    alert_list,
    field_links,
    instant,
    labels_of,
    mapping,
    panel_link,
    place,
    prop,
    query,
    series_panel,
    stat_panel,
    table_panel,
    thresholds,
    value_texts,
)
from mixin.dashboards.promql import RPC_STATES, UNARY, B, C, N, Selectors, quantile
from mixin.dashboards.scaffold import (
    LOAD_OF_NODE,
    REQUESTS_FOR_MODEL,
    REQUESTS_TO_NODE,
    WORKER_OVER_TIME,
    dashboard,
    probed,
    with_panels,
)
from mixin.dashboards.slo import BUDGET_COLOURS


def parts_up(sel: Selectors) -> str:
    """Every part the exporter reports an `_up` series for is one it expects: absent parts have none, so they are left
    out. Filters apply to the parts that carry their label; the others (Redis, the dashboard) pass every filter."""
    return sel.series("", '__name__=~"sollol_(redis|coordinator|rpc_backend|ollama_node|dashboard)_up"',
                      'coordinator=~"$coordinator|"', 'backend=~"$backend|"', 'node=~"$node|"')


def overview(cfg: Config) -> db.Dashboard:
    sel = Selectors(cfg)
    dash = dashboard(sel, "sollol-overview", "The cluster at a glance: is every part up, how much does SOLLOL serve, how much "
                     "fails, how slow, how many tokens, how much error budget is left, and how full is each GPU.",
                     probed(sel), alerts=True)
    # The events' request figures over the selected nodes.
    requests, failed = sel.series("sollol_requests_total", N), sel.series("sollol_requests_total", 'outcome="error"', N)
    # Budget left of every SLO over the selection: SLOs about a node or coordinator follow the filter, the others pass it.
    worst_budget = sel.recorded("slo:period_error_budget_remaining:ratio", 'coordinator=~"$coordinator|"', 'node=~"$node|"')
    p95_per_model = sel.recorded("model:sollol_request_duration_seconds:quantile_rate5m", quantile("0.95"), UNARY)

    def node_series(metric: str) -> str:
        return sel.series(metric, N)

    return with_panels(dash, [
        # The ten-second row: what is down, how much is served and fails, how slow, how many tokens, what budget is left.
        place(stat_panel("System status", "HEALTHY when every part this cluster has is up: Redis, the selected coordinators, RPC "
                         "workers and Ollama nodes, and SOLLOL's dashboard service; DEGRADED when one is down. Parts the "
                         "exporter does not expect (a default address where nothing was ever found) are left out; "
                         "NOTHING FOUND when it reports no part at all.", "none",
                         instant(f"min({parts_up(sel)})"),
                         mappings=mapping({"1": ("HEALTHY", "green"), "0": ("DEGRADED", "red")})).no_value("NOTHING FOUND"), 0, 0, 4, 4),
        place(stat_panel("Requests per second", "Requests SOLLOL sends the selected Ollama nodes, both outcomes, from its activity "
                         "events (attempts: a retried request counts on each node it tried).", "reqps",
                         instant(f"sum(rate({requests}[$__rate_interval]))")), 4, 0, 4, 4),
        place(stat_panel("Error ratio", "Share of those requests that failed (HTTP error, timeout, connection), from SOLLOL's "
                         "events: 0 while none fails.", "percentunit",
                         instant(f"(sum(rate({failed}[$__rate_interval])) or vector(0)) / sum(rate({requests}[$__rate_interval]))"))
              .thresholds(thresholds((None, "green"), (0.01, "orange"), (0.05, "red"))), 8, 0, 4, 4),
        place(stat_panel("p95 latency", "95th percentile of successful unary (not streamed) requests to the selected nodes, from the "
                         "exporter's histograms (a stream's latency is its whole generation).", "s",
                         instant("histogram_quantile(0.95, sum by (le) "
                                 f"(rate({sel.series('sollol_request_duration_seconds_bucket', UNARY, N)}[$__rate_interval])))")), 12, 0, 4, 4),
        place(stat_panel("Tokens per second", "Tokens the selected llama.cpp coordinators generate per second, from llama-server's "
                         "own counter (Ollama's token counts do not reach SOLLOL's events).", "suffix: tok/s",
                         instant(f"sum(rate({sel.series('sollol_coordinator_tokens_predicted_total', C)}[$__rate_interval]))")), 16, 0, 4, 4),
        place(stat_panel("Worst SLO budget", "The least error budget left over the SLO window among all SLOs (nodes, models, "
                         "coordinators, applications; those of a node or coordinator follow the filters): below 0 an SLO is "
                         "already missed. The SOLLOL SLOs dashboard has each one.", "percentunit",
                         instant(f"min({worst_budget})"))
              .thresholds(thresholds(*BUDGET_COLOURS)).links([panel_link("Every SLO and its budget", "sollol-slo")]), 20, 0, 4, 4),
        place(stat_panel("Active applications", "Applications heartbeating SOLLOL's dashboard.", "none",
                         instant(f"sum({sel.series('sollol_application_up')})")), 0, 4, 4, 4),
        place(stat_panel("Active hosts", "Ollama nodes answering the exporter's probe, out of all known nodes.", "none",
                         instant(f"sum({node_series('sollol_ollama_node_up')})", "up"),
                         instant(f"count({node_series('sollol_ollama_node_up')})", "total", "B")), 4, 4, 4, 4),
        place(stat_panel("GPU memory used", "GPU memory in use on the selected nodes with a GPU reporter.", "bytes",
                         instant(f"sum({node_series('sollol_gpu_memory_used_bytes')})")), 8, 4, 4, 4),
        place(stat_panel("Hottest GPU", "The highest GPU temperature the reporters of the selected nodes give.", "celsius",
                         instant(f"max({node_series('sollol_gpu_temperature_celsius')})"))
              .thresholds(thresholds((None, "green"), (80, "orange"), (90, "red"))), 12, 4, 4, 4),
        place(stat_panel("Average latency (SOLLOL's own view)",
                         "Mean request duration since the router started, as SOLLOL's routers report it (not a rate; "
                         "the p95 above and the SOLLOL requests dashboard have latency from the exporter's own histograms).", "s",
                         instant(f"avg({sel.series('sollol_router_average_duration_seconds')})")), 16, 4, 4, 4),
        place(stat_panel("Success rate (SOLLOL's own view)",
                         "Successful / total requests since the router started, as SOLLOL's routers report it.", "percentunit",
                         instant(f"avg({sel.series('sollol_router_success_ratio')})")), 20, 4, 4, 4),
        # What SOLLOL actually served, from its activity events (recording rules, 5 minute windows).
        place(series_panel("Requests per second per node", "Requests SOLLOL sent to each Ollama node, by its activity events, "
                           "averaged over 5 minutes (recording rule node:sollol_requests:rate5m).", "reqps",
                           query(f"sum by (node) ({sel.recorded('node:sollol_requests:rate5m', N)})", "{{node}}")), 0, 8, 8, 8),
        place(series_panel("Error ratio per node", "Share of each node's requests that failed over 5 minutes "
                           "(recording rule node:sollol_request_errors:ratio_rate5m).", "percentunit",
                           query(f"max by (node) ({sel.recorded('node:sollol_request_errors:ratio_rate5m', N)})", "{{node}}")), 8, 8, 8, 8),
        place(series_panel("p95 latency per model", "95th percentile of successful unary (not streamed) requests per model over "
                           "5 minutes, from the exporter's histograms (recording rule model:sollol_request_duration_seconds:quantile_rate5m).", "s",
                           query(f"max by (model) ({p95_per_model})", "{{model}}")), 16, 8, 8, 8),
        # How full is each GPU, and with what.
        place(table_panel(
            "GPUs", "Per node and GPU, from SOLLOL's GPU reporters: the card, memory used of total, utilisation and temperature.", "none",
            labels_of(f"max by (node, gpu, name, vendor) ({node_series('sollol_gpu_info')})"),
            Column(f"max by (node, gpu) ({node_series('sollol_gpu_memory_used_bytes')} / {node_series('sollol_gpu_memory_total_bytes')})",
                   "Memory used", "percentunit"),
            Column(f"max by (node, gpu) ({node_series('sollol_gpu_memory_total_bytes')})", "Memory", "bytes"),
            Column(f"max by (node, gpu) ({node_series('sollol_gpu_utilization_ratio')})", "Utilisation", "percentunit"),
            Column(f"max by (node, gpu) ({node_series('sollol_gpu_temperature_celsius')})", "Temperature", "celsius"),
            fields=[field_links("node", LOAD_OF_NODE)]), 0, 16, 12, 8),
        place(table_panel(
            "Loaded models", "Per node and model Ollama has loaded (/api/ps): its memory, the part of it in GPU memory (Ollama's "
            "estimate; less than all of it means layers run on the CPU, many times slower), and when it is unloaded.", "none",
            Column(f"max by (node, model) ({node_series('sollol_ollama_model_memory_bytes')})", "Memory", "bytes"),
            Column(f"max by (node, model) ({node_series('sollol_ollama_model_vram_bytes')})", "GPU memory", "bytes"),
            Column(f"max by (node, model) ({node_series('sollol_ollama_model_vram_bytes')} / {node_series('sollol_ollama_model_memory_bytes')})",
                   "On the GPU", "percentunit"),
            Column(f"max by (node, model) ({node_series('sollol_ollama_model_expiry_seconds')})", "Unloaded in", "s"),
            fields=[field_links("model", REQUESTS_FOR_MODEL), field_links("node", REQUESTS_TO_NODE)]), 12, 16, 12, 8),
        place(series_panel("GPU memory per model", "GPU memory each loaded model holds on each node (Ollama's estimate from /api/ps), "
                           "stacked per node it is what Ollama has put on that node's GPUs.", "bytes",
                           query(f"sum by (node, model) ({node_series('sollol_ollama_model_vram_bytes')})", "{{node}} {{model}}")), 0, 24, 8, 8),
        place(gpu_temperature(sel), 8, 24, 8, 8),
        place(series_panel("RPC workers up", "Share of the RPC workers answering their probe: per selected coordinator, of the workers "
                           "it drives (recording rule coordinator:sollol_rpc_backend_up:ratio), and of all workers of the cluster "
                           "(cluster:sollol_rpc_backend_up:ratio, not filtered by worker).", "percentunit",
                           query(f"max by (coordinator) ({sel.recorded('coordinator:sollol_rpc_backend_up:ratio', C)})", "{{coordinator}}"),
                           query(f"max({sel.recorded('cluster:sollol_rpc_backend_up:ratio')})", "all workers", "B")), 16, 24, 8, 8),
        place(table_panel(
            "Ollama hosts", "Per node: probe result, probe latency, Ollama version, models loaded, GPUs (or CPU only), and SOLLOL's "
            "view: its success ratio, requests in flight, latency figure, free-VRAM estimate and routing priority.", "none",
            Column(f"max by (node) ({node_series('sollol_ollama_node_up')})", "Up",
                   mappings=value_texts({"1": ("UP", "green"), "0": ("DOWN", "red")})),
            Column(f"max by (node) ({node_series('sollol_ollama_node_probe_duration_seconds')})", "Probe latency", "s"),
            labels_of(f"max by (node, version) ({node_series('sollol_ollama_node_info')})"),
            Column(f"max by (node) ({node_series('sollol_ollama_node_loaded_models')})", "Models loaded", "none"),
            Column(f"max by (node) ({node_series('sollol_gpu_devices')})", "GPUs", "none"),
            Column(f"max by (node) ({node_series('sollol_gpu_cpu_only')})", "CPU only", mappings=value_texts({"1": ("YES", "orange"), "0": "no"})),
            Column(f"max by (node) ({node_series('sollol_ollama_node_success_ratio')})", "Success rate (SOLLOL)", "percentunit"),
            Column(f"max by (node) ({node_series('sollol_ollama_node_active_requests')})", "In flight (SOLLOL)", "none"),
            Column(f"max by (node) ({node_series('sollol_ollama_node_reported_latency_seconds')})", "Latency (SOLLOL)", "s"),
            Column(f"max by (node) ({node_series('sollol_ollama_node_reported_gpu_free_bytes')})", "Free VRAM (SOLLOL)", "bytes"),
            Column(f"max by (node) ({node_series('sollol_ollama_node_priority')})", "Priority (SOLLOL)", "none"),
            fields=[field_links("node", REQUESTS_TO_NODE, LOAD_OF_NODE)]), 0, 32, 12, 8),
        place(table_panel(
            "RPC backends", "llama.cpp rpc-server workers: state by the exporter's rule (busy = held by its coordinator), probe "
            "latency, how they are probed and where the exporter found them.", "none",
            Column(RPC_STATES.expr(sel), "State"),
            Column(f"max by (backend) ({sel.series('sollol_rpc_backend_probe_duration_seconds', B)})", "Probe latency", "s"),
            labels_of(f"max by (backend, probe, source) ({sel.series('sollol_rpc_backend_info', B)})"),
            mappings=mapping(RPC_STATES.names()), fields=[field_links("backend", WORKER_OVER_TIME)]), 12, 32, 12, 8),
        place(table_panel(
            "Applications", "Applications registered with SOLLOL's dashboard: name, router type, version, uptime and how long ago "
            "the last heartbeat came.", "s",
            Column(f"max by (app, router_type) ({sel.series('sollol_application_uptime_seconds')})", "Uptime"),
            Column(f"time() - max by (app, router_type) ({sel.series('sollol_application_last_heartbeat_timestamp_seconds')})", "Last heartbeat"),
            labels_of(f"max by (app, router_type, version) ({sel.series('sollol_application_info')})")), 0, 40, 12, 8),
        place(alert_list("Active alerts", "Alerts firing in Prometheus (via the Alertmanager data source)."), 12, 40, 12, 8,
              datasource=ALERTMANAGER),
        # SOLLOL's own routers: what they say about themselves in the router metadata.
        place(table_panel(
            "SOLLOL routers (SOLLOL's own view)", "Per router (source): requests per second and success ratio by its own counters, Ollama nodes in its "
            "pool, and its response cache: hit ratio, entries of capacity, evictions per second.", "none",
            Column(f"sum by (source) (rate({sel.series('sollol_router_requests_total')}[$__rate_interval]))", "Requests/s", "reqps"),
            Column(f"max by (source) ({sel.series('sollol_router_success_ratio')})", "Success rate", "percentunit"),
            Column(f"max by (source) ({sel.series('sollol_pool_nodes_configured')})", "Nodes", "none"),
            Column(f"max by (source) ({sel.series('sollol_pool_cache_hits_total')} / ({sel.series('sollol_pool_cache_hits_total')} + "
                   f"{sel.series('sollol_pool_cache_misses_total')}))", "Cache hits", "percentunit"),
            Column(f"max by (source) ({sel.series('sollol_pool_cache_entries')} / {sel.series('sollol_pool_cache_capacity_entries')})",
                   "Cache full", "percentunit"),
            Column(f"sum by (source) (rate({sel.series('sollol_pool_cache_evictions_total')}[$__rate_interval]))", "Evictions/s", "ops")), 0, 48, 12, 8),
        place(stat_panel("SynapticLlamas' router", "Nodes SynapticLlamas' router knows (total, healthy, with a GPU), its routing "
                         "decisions per second and the mean time one takes.", "none",
                         instant(f"max by (kind) ({sel.series('sollol_router_nodes')})", "{{kind}} nodes"),
                         instant(f"sum(rate({sel.series('sollol_router_routing_decisions_total')}[$__rate_interval]))", "decisions", "B"),
                         instant(f"max({sel.series('sollol_router_average_routing_time_seconds')})", "routing time", "C"))
              .override_by_query("B", [prop("unit", "ops")]).override_by_query("C", [prop("unit", "s")]), 12, 48, 12, 8),
        place(stat_panel("Task types learned", "Distinct task types SynapticLlamas' router has seen.", "none",
                         instant(f"count({sel.series('sollol_router_task_type_requests_total')})")), 0, 56, 6, 8),
        place(table_panel("Requests per task type", "Requests per detected task type (SynapticLlamas).", "none",
                          Column(f"sum by (task_type) ({sel.series('sollol_router_task_type_requests_total')})")), 6, 56, 6, 8),
        place(series_panel("Routing events by type", "Routing decisions read from sollol:routing_stream, per second.", "ops",
                           query(f"sum by (event_type) (rate({sel.series('sollol_routing_events_total')}[$__rate_interval]))", "{{event_type}}")),
              12, 56, 12, 8),
    ])
