"""SOLLOL requests: what SOLLOL served, from its activity events: request rate, errors and latency per node, model
and coordinator."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from mixin.config import Config
from mixin.dashboards.panels import (
    Column,
    field_links,
    heatmap_panel,
    instant,
    mapping,
    place,
    query,
    series_panel,
    stat_panel,
    table_panel,
)
from mixin.dashboards.promql import QUANTILES, STREAMED, UNARY, C, M, N, Selectors, percentile, quantile
from mixin.dashboards.scaffold import (
    COORDINATOR_AND_WORKERS,
    LOAD_OF_NODE,
    REQUESTS_FOR_MODEL,
    REQUESTS_TO_NODE,
    dashboard,
    lifecycle_annotation,
    served,
    with_panels,
)


def recorded_table(sel: Selectors, by: str, filter_: str, title: str, description: str, links: list[dict[str, object]]):
    """Per node or model: request rate, error ratio and latency percentiles from the recording rules."""
    def recorded(family: str, *matchers: str) -> str:
        return sel.recorded(f"{by}:sollol_{family}", *matchers)
    return table_panel(
        title, description, "none",
        Column(f"sum by ({by}) ({recorded('requests:rate5m', filter_)})", "Requests/s", "reqps"),
        Column(f"max by ({by}) ({recorded('request_errors:ratio_rate5m', filter_)})", "Error ratio", "percentunit"),
        *(Column(f"max by ({by}) ({recorded('request_duration_seconds:quantile_rate5m', quantile(q), UNARY, filter_)})",
                 percentile(q), "s") for q in QUANTILES),
        fields=[field_links(by, *links)])


def requests_dashboard(cfg: Config) -> db.Dashboard:
    sel = Selectors(cfg)
    dash = dashboard(sel, "sollol-requests",
                     "What SOLLOL served, from its activity events: request rate, errors and latency per node, model and coordinator.",
                     served(sel))
    requests, failed = sel.series("sollol_requests_total", N, M), sel.series("sollol_requests_total", 'outcome="error"', N, M)
    buckets = sel.series("sollol_request_duration_seconds_bucket", UNARY, N, M)
    coordinator_requests = sel.series("sollol_coordinator_requests_total", C, M)

    def error_ratio(by: str) -> str:
        """Failed / all requests per `by`; 0 (not no data) for a node or model without failures."""
        total = f"sum by ({by}) (rate({requests}[$__rate_interval]))"
        return f"(sum by ({by}) (rate({failed}[$__rate_interval])) or 0 * {total}) / {total}"

    def latency(by: str) -> list:
        return [query(f"histogram_quantile({q}, sum by ({by}, le) (rate({buckets}[$__rate_interval])))", f"{{{{{by}}}}} {percentile(q)}", ref)
                for q, ref in zip(QUANTILES, "ABC", strict=True)]

    def per_coordinator_model(recorded: str, *matchers: str) -> str:
        return sel.recorded(f"coordinator_model:sollol_coordinator_{recorded}", *matchers, C, M)

    def stream_duration(q: str) -> str:
        return sel.recorded("model:sollol_request_duration_seconds:quantile_rate5m", quantile(q), STREAMED, M)

    coordinator_p95 = per_coordinator_model("request_duration_seconds:quantile_rate5m", quantile("0.95"))
    routers_percentiles = sel.series("sollol_router_latency_seconds", 'quantile=~".+"')
    return with_panels(dash, [
        place(stat_panel("Requests per second", "Requests SOLLOL sent to the selected Ollama nodes and models, both outcomes.", "reqps",
                         instant(f"sum(rate({requests}[$__rate_interval]))")), 0, 0, 4, 4),
        place(stat_panel("Error ratio", "Share of those requests that failed (HTTP error, timeout, connection).", "percentunit",
                         instant(f"(sum(rate({failed}[$__rate_interval])) or vector(0)) / sum(rate({requests}[$__rate_interval]))")), 4, 0, 4, 4),
        place(stat_panel("p95 latency", "95th percentile of successful unary (not streamed) requests over the selection, from the "
                         "exporter's histogram.", "s",
                         instant(f"histogram_quantile(0.95, sum by (le) (rate({buckets}[$__rate_interval])))")), 8, 0, 4, 4),
        place(stat_panel("Coordinator requests per second", "Requests SOLLOL sent to the selected llama.cpp coordinators, both outcomes.", "reqps",
                         instant(f"sum(rate({coordinator_requests}[$__rate_interval]))")), 12, 0, 4, 4),
        place(stat_panel("Completion tokens per second", "Completion tokens of coordinator requests, where SOLLOL's events carry them "
                         "(RayHybridRouter's).", "suffix: tok/s",
                         instant(f"sum(rate({sel.series('sollol_coordinator_completion_tokens_total', C, M)}[$__rate_interval]))")), 16, 0, 4, 4),
        place(stat_panel("Event subscriber", "Whether the exporter is subscribed to SOLLOL's activity channels. While it is not, "
                         "nothing on this dashboard is counted (PUB/SUB keeps no backlog).", "none",
                         instant(f"min({sel.series('sollol_events_subscribed')})"),
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
                           *(query(f"max by (model) ({stream_duration(q)})", f"{{{{model}}}} {percentile(q)}", ref)
                             for q, ref in (("0.5", "A"), ("0.95", "B")))), 16, 4, 8, 8),
        place(series_panel("Request rate per node", "Requests per second to each node, split by outcome (success, error).", "reqps",
                           query(f"sum by (node, outcome) (rate({requests}[$__rate_interval]))", "{{node}} {{outcome}}")), 0, 12, 6, 8),
        place(series_panel("Error ratio per node", "Share of each node's requests that failed.", "percentunit",
                           query(error_ratio("node"), "{{node}}")), 6, 12, 6, 8),
        place(series_panel("Request rate per model", "Requests per second for each model, split by outcome.", "reqps",
                           query(f"sum by (model, outcome) (rate({requests}[$__rate_interval]))", "{{model}} {{outcome}}")), 12, 12, 6, 8),
        place(series_panel("Error ratio per model", "Share of each model's requests that failed.", "percentunit",
                           query(error_ratio("model"), "{{model}}")), 18, 12, 6, 8),
        place(series_panel("Errors per reason", "Failed requests per second per node and reason: http_5xx, http_4xx, timeout, "
                           "connection, other.", "reqps",
                           query(f"sum by (node, reason) (rate({sel.series('sollol_request_errors_total', N, M)}[$__rate_interval]))",
                                 "{{node}} {{reason}}")), 0, 20, 8, 9),
        place(heatmap_panel("Latency heatmap", "Successful unary (not streamed) requests per second in each latency bucket, over "
                            "the selected nodes and models: where the bulk of requests lands, and the tail.", "s", "reqps",
                            query(f"sum by (le) (rate({buckets}[$__rate_interval]))", "{{le}}", as_heatmap=True)), 8, 20, 16, 9),
        place(recorded_table(sel, "node", N, "Nodes over the last 5 minutes", "Per node, over all models: request rate and error ratio "
                             "(streamed or not) and p50/p95/p99 latency of unary requests, from the recording rules (5 minute "
                             "windows, the ones the alerts use).", [REQUESTS_TO_NODE, LOAD_OF_NODE]), 0, 29, 12, 8),
        place(recorded_table(sel, "model", M, "Models over the last 5 minutes", "Per model, over all nodes: request rate and error ratio "
                             "(streamed or not) and p50/p95/p99 latency of unary requests, from the recording rules (5 minute "
                             "windows, the ones the alerts use).", [REQUESTS_FOR_MODEL]), 12, 29, 12, 8),
        place(series_panel("Coordinator request latency (p95)", "95th percentile of successful coordinator requests per coordinator "
                           "and model over 5 minutes (recording rule).", "s",
                           query(f"max by (coordinator, model) ({coordinator_p95})", "{{coordinator}} {{model}}")), 0, 37, 8, 8),
        place(series_panel("Coordinator requests per second", "Requests per second per coordinator and model, split by outcome "
                           "(failures include RayHybridRouter's failed traces).", "reqps",
                           query(f"sum by (coordinator, model, outcome) (rate({coordinator_requests}[$__rate_interval]))",
                                 "{{coordinator}} {{model}} {{outcome}}")), 8, 37, 8, 8),
        place(series_panel("Completion tokens per second per model", "Completion tokens per second per coordinator and model over "
                           "5 minutes (recording rule), where SOLLOL's events carry them.", "suffix: tok/s",
                           query(f"sum by (coordinator, model) ({per_coordinator_model('completion_tokens:rate5m')})",
                                 "{{coordinator}} {{model}}")), 16, 37, 8, 8),
        place(series_panel("RPC workers per coordinator (heartbeats)", "RPC workers in use and configured, as the coordinator's last "
                           "heartbeat said (rpc_registry: SOLLOL's registry; its checks are TCP connects).", "none",
                           query(f"max by (coordinator) ({sel.series('sollol_coordinator_rpc_backends_active', C)})", "{{coordinator}} active"),
                           query(f"max by (coordinator) ({sel.series('sollol_coordinator_rpc_backends_configured', C)})", "{{coordinator}} configured",
                                 "B")), 0, 45, 12, 8),
        place(series_panel("Latency percentiles (SOLLOL's own view)", "p50/p95/p99 as SOLLOL's routers report them: over their "
                           "last 1,000 requests, since they started, not per node or model; compare with the histograms above.", "s",
                           query(f"max by (source, quantile) ({routers_percentiles})",
                                 "{{source}} q{{quantile}}")), 12, 45, 12, 8),
        place(table_panel(
            "Coordinators over the last 5 minutes", "Per coordinator and model: request rate, p95 latency of successful requests "
            "and completion tokens per second, from the recording rules (5 minute windows).", "none",
            Column(f"sum by (coordinator, model) ({per_coordinator_model('requests:rate5m')})", "Requests/s", "reqps"),
            Column(f"max by (coordinator, model) ({coordinator_p95})", "p95", "s"),
            Column(f"sum by (coordinator, model) ({per_coordinator_model('completion_tokens:rate5m')})", "Completion tokens/s", "suffix: tok/s"),
            fields=[field_links("coordinator", COORDINATOR_AND_WORKERS)]), 0, 53, 24, 8),
    ]).annotation(lifecycle_annotation(sel))
