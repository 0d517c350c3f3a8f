"""SOLLOL inference cluster: llama.cpp coordinators, their RPC workers, Ollama nodes and GPUs over time."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from mixin.config import Config
from mixin.dashboards.panels import (
    Column,
    field_links,
    instant,
    labels_of,
    mapping,
    place,
    prop,
    query,
    series_panel,
    stat_panel,
    table_panel,
    timeline_panel,
    value_texts,
)
from mixin.dashboards.promql import COORDINATOR_STATES, RPC_STATES, B, C, N, Selectors
from mixin.dashboards.scaffold import REQUESTS_TO_COORDINATOR, dashboard, lifecycle_annotation, probed, with_panels


def gpu_temperature(sel: Selectors):
    return series_panel("GPU temperature", "Temperature per node and GPU, from SOLLOL's GPU reporters.", "celsius",
                        query(f"max by (node, gpu) ({sel.series('sollol_gpu_temperature_celsius', N)})", "{{node}} gpu{{gpu}}"))


def inference(cfg: Config) -> db.Dashboard:
    sel = Selectors(cfg)
    dash = dashboard(sel, "sollol-inference", "llama.cpp coordinators, their RPC workers, Ollama nodes and GPUs over time.", probed(sel))

    def coordinator(metric: str) -> str:
        return sel.series(f"sollol_coordinator_{metric}", C)

    def worker(metric: str) -> str:
        return sel.series(metric, B)

    def node(metric: str) -> str:
        return sel.series(metric, N)

    def per_coordinator(counter: str) -> str:
        return f"sum by (coordinator) (rate({coordinator(counter)}[$__rate_interval]))"

    def per_token(numerator: str, denominator: str) -> str:
        """rate(sollol_coordinator_<numerator>) / rate(sollol_coordinator_<denominator>) per coordinator."""
        return f"{per_coordinator(numerator)} / {per_coordinator(denominator)}"

    return with_panels(dash, [
        place(timeline_panel("Coordinator state", "llama-server state per coordinator: OK, LOADING (model loading), STALLED (/metrics "
                             "timing out), DOWN, or ABSENT (a default address where no coordinator was ever configured, announced "
                             "or seen: no llama.cpp here, nothing to alert on).",
                             COORDINATOR_STATES.expr(sel), "{{coordinator}}", COORDINATOR_STATES.names()), 0, 0, 24, 5),
        place(series_panel("Generated tokens per second", "Tokens generated per second, from llama-server's counters, averaged over "
                           "5 minutes (recording rule coordinator:sollol_coordinator_tokens_predicted:rate5m).", "suffix: tok/s",
                           query(f"sum by (coordinator) ({sel.recorded('coordinator:sollol_coordinator_tokens_predicted:rate5m', C)})",
                                 "{{coordinator}}")), 0, 5, 8, 8),
        place(series_panel("Prompt tokens per second", "Prompt tokens processed per second, averaged over 5 minutes "
                           "(recording rule coordinator:sollol_coordinator_prompt_tokens:rate5m).", "suffix: tok/s",
                           query(f"sum by (coordinator) ({sel.recorded('coordinator:sollol_coordinator_prompt_tokens:rate5m', C)})",
                                 "{{coordinator}}")), 8, 5, 8, 8),
        place(series_panel("Request queue", "Requests being processed and requests deferred, waiting for a slot (queue depth).", "none",
                           query(f"sum by (coordinator) ({coordinator('requests_processing')})", "{{coordinator}} processing"),
                           query(f"sum by (coordinator) ({coordinator('requests_deferred')})", "{{coordinator}} deferred", "B")), 16, 5, 8, 8),
        place(timeline_panel("RPC backend state", "Worker state by the exporter's rule: HEALTHY, BUSY (held by its coordinator), OFFLINE, UNREACHABLE.",
                             RPC_STATES.expr(sel), "{{backend}}", RPC_STATES.names()), 0, 13, 24, 6),
        place(series_panel("RPC probe latency", "Time the exporter's probe of each worker took (connect, or handshake/gRPC where configured).", "s",
                           query(f"max by (backend) ({worker('sollol_rpc_backend_probe_duration_seconds')})", "{{backend}}")), 0, 19, 12, 8),
        place(series_panel("Load distribution across Ollama nodes", "Requests per second SOLLOL sends to each node, and routing "
                           "selections, by SOLLOL's own counters, averaged over 5 minutes (recording rules "
                           "node:sollol_ollama_node_requests:rate5m, node:sollol_routing_node_selections:rate5m).", "reqps",
                           query(f"sum by (node) ({sel.recorded('node:sollol_ollama_node_requests:rate5m', N)})", "{{node}} requests"),
                           query(f"sum by (node) ({sel.recorded('node:sollol_routing_node_selections:rate5m', N)})", "{{node}} selected", "B")),
              12, 19, 12, 8),
        place(series_panel("GPU memory per node", "GPU memory used and total per node and GPU, from SOLLOL's GPU reporters.", "bytes",
                           query(f"sum by (node, gpu) ({node('sollol_gpu_memory_used_bytes')})", "{{node}} gpu{{gpu}} used"),
                           query(f"sum by (node, gpu) ({node('sollol_gpu_memory_total_bytes')})", "{{node}} gpu{{gpu}} total", "B")), 0, 27, 8, 8),
        place(series_panel("Worker device memory", "Memory per RPC worker device from the ggml handshake, and GPU memory registered by SOLLOL's scripts.",
                           "bytes",
                           query(f"sum by (backend, device) ({worker('sollol_rpc_backend_device_memory_total_bytes')}"
                                 f" - {worker('sollol_rpc_backend_device_memory_free_bytes')})", "{{backend}} dev{{device}} used"),
                           query(f"sum by (backend, gpu) ({worker('sollol_rpc_node_gpu_memory_bytes')})", "{{backend}} gpu{{gpu}} registered", "B")),
              8, 27, 8, 8),
        place(series_panel("GPU utilisation", "GPU utilisation per node and GPU.", "percentunit",
                           query(f"max by (node, gpu) ({node('sollol_gpu_utilization_ratio')})", "{{node}} gpu{{gpu}}")), 16, 27, 8, 8),
        place(series_panel("Router metadata age", "Age of sollol:router:metadata: how long ago its writer last refreshed it.", "s",
                           query(f"max({sel.series('sollol_metadata_age_seconds')})", "age")), 0, 35, 12, 6),
        place(series_panel("Coordinator probe latency", "Time the coordinator probe (/health, /metrics) took.", "s",
                           query(f"max by (coordinator) ({coordinator('probe_duration_seconds')})", "{{coordinator}}")), 12, 35, 12, 6),
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
                           query(f"{per_coordinator('prompt_tokens_cached_total')} / "
                                 f"({per_coordinator('prompt_tokens_cached_total')} + {per_coordinator('prompt_tokens_total')})",
                                 "{{coordinator}}")), 16, 41, 8, 8),
        place(table_panel(
            "Coordinators", "Per coordinator: state, llama-server build, slots, whether the model sleeps (unloaded after idling), "
            "whether its /metrics was read this scrape, and the longest sequence it has seen.", "none",
            Column(COORDINATOR_STATES.expr(sel), "State", mappings=mapping(COORDINATOR_STATES.names())),
            labels_of(f"max by (coordinator, build) ({coordinator('build_info')})"),
            Column(f"max by (coordinator) ({coordinator('slots')})", "Slots"),
            Column(f"max by (coordinator) ({coordinator('sleeping')})", "Sleeping", mappings=value_texts({"1": ("SLEEPING", "blue"), "0": "no"})),
            Column(f"max by (coordinator) ({coordinator('metrics_up')})", "/metrics",
                   mappings=value_texts({"1": ("READ", "green"), "0": ("NOT READ", "orange")})),
            Column(f"max by (coordinator) ({coordinator('max_sequence_tokens')})", "Longest sequence", "suffix: tokens"),
            fields=[field_links("coordinator", REQUESTS_TO_COORDINATOR)]), 0, 49, 12, 8),
        place(series_panel("Decode calls per second", "llama_decode() calls per second per coordinator.", "ops",
                           query(per_coordinator("decode_calls_total"), "{{coordinator}}")), 12, 49, 6, 8),
        place(series_panel("Busy slots per decode", "Average slots busy per llama_decode() call: how much batching the parallel "
                           "slots achieve.", "none",
                           query(f"max by (coordinator) ({coordinator('busy_slots_per_decode')})", "{{coordinator}}")), 18, 49, 6, 8),
        place(table_panel(
            "Speculative decoding", "Per coordinator with a draft model: share of draft tokens the target model accepted, "
            "verification steps per second and accepted tokens per step (no rate without drafts).", "none",
            Column(per_token("speculative_accepted_tokens_total", "speculative_draft_tokens_total"), "Accepted", "percentunit"),
            Column(per_coordinator("speculative_drafts_total"), "Drafts/s", "ops"),
            Column(per_token("speculative_accepted_tokens_total", "speculative_drafts_total"), "Accepted per draft", "none")), 0, 57, 8, 8),
        place(gpu_temperature(sel), 8, 57, 8, 8),
        place(stat_panel("Router metadata key", "Whether sollol:router:metadata exists, and the TTL left on it (none once "
                         "CoordinatorManager rewrote it).", "none",
                         instant(f"max({sel.series('sollol_metadata_present')})", "key"),
                         instant(f"max({sel.series('sollol_metadata_ttl_seconds')})", "TTL", "B"),
                         mappings=mapping({"1": ("PRESENT", "green"), "0": ("MISSING", "red")}))
              .override_by_query("B", [prop("unit", "s"), prop("mappings", [])]), 16, 57, 8, 4),
        place(table_panel("Metadata writers", "When each of SOLLOL's writers' layouts of sollol:router:metadata was last read: "
                          "OllamaPool every 5 s, SynapticLlamas every 5 s, RayHybridRouter once at its start.", "s",
                          Column(f"time() - max by (variant) ({sel.series('sollol_metadata_variant_last_seen_timestamp_seconds')})",
                                 "Last read")), 16, 61, 8, 4),
        place(table_panel(
            "Worker registrations", "RPC workers registered by SOLLOL's node scripts (sollol:rpc:node:*): whether the key is there, "
            "a GPU, the CPU and GPU memory offered and the parallel workers.", "none",
            Column(f"max by (backend) ({worker('sollol_rpc_node_registered')})", "Registered",
                   mappings=value_texts({"1": ("YES", "green"), "0": ("EXPIRED", "orange")})),
            Column(f"max by (backend) ({worker('sollol_rpc_node_has_gpu')})", "GPU", mappings=value_texts({"1": "yes", "0": "no"})),
            Column(f"max by (backend) ({worker('sollol_rpc_node_cpu_memory_bytes')})", "CPU memory", "bytes"),
            Column(f"sum by (backend) ({worker('sollol_rpc_node_gpu_memory_bytes')})", "GPU memory", "bytes"),
            Column(f"max by (backend) ({worker('sollol_rpc_node_parallel_workers')})", "Parallel workers")), 0, 65, 12, 7),
        place(table_panel(
            "Worker devices (handshake)", "What the ggml handshake learned of each worker: devices, RPC protocol, and how long "
            "ago it last answered one.", "none",
            Column(f"max by (backend) ({worker('sollol_rpc_backend_devices')})", "Devices"),
            labels_of(f"max by (backend, version) ({worker('sollol_rpc_backend_protocol_info')})"),
            Column(f"time() - max by (backend) ({worker('sollol_rpc_backend_handshake_timestamp_seconds')})", "Last handshake", "s")),
              12, 65, 12, 7),
    ]).annotation(lifecycle_annotation(sel))
