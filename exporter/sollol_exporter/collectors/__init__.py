"""Collectors: one class per group of families, each a pure renderer of one immutable Snapshot."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client.core import Metric

from sollol_exporter.collectors.names import CollectorName
from sollol_exporter.config import Config
from sollol_exporter.snapshot import Snapshot

# The collectors --no-collector.<name> can turn off, with what each reports (for --help). The exporter's own
# collector (CollectorName.EXPORTER) is not among them: it reports on the others.
OPTIONAL = {
    CollectorName.REDIS: "whether SOLLOL's Redis answers",
    CollectorName.METADATA: "sollol:router:metadata: its writer, age and router statistics",
    CollectorName.GPU: "GPU reports of the Ollama nodes (sollol:gpu:*)",
    CollectorName.RPC_NODES: "worker registrations (sollol:rpc:node:*)",
    CollectorName.ROUTING: "routing decisions from sollol:routing_stream",
    CollectorName.COORDINATOR: "llama-server coordinators: state, probe, their /metrics and /props",
    CollectorName.RPC_BACKENDS: "rpc-server workers: probe state and handshakes",
    CollectorName.OLLAMA: "Ollama nodes: up, latency, loaded models, version",
    CollectorName.APPLICATIONS: "applications registered with SOLLOL's dashboard",
    CollectorName.EVENTS: "request metrics counted from SOLLOL's activity events",
}


class Collector(Protocol):
    name: CollectorName

    def collect(self, snapshot: Snapshot) -> Iterable[Metric]: ...


def build_collectors(config: Config) -> list[Collector]:
    """The collectors for this config, without those turned off (config.disabled_collectors), and the exporter's own
    (CollectorName.EXPORTER: it reports on the others, so a disabled one is not listed there either)."""
    from sollol_exporter.collectors.applications import ApplicationsCollector
    from sollol_exporter.collectors.coordinator import CoordinatorCollector
    from sollol_exporter.collectors.events import EventsCollector
    from sollol_exporter.collectors.exporter import ExporterCollector
    from sollol_exporter.collectors.gpu import GpuCollector
    from sollol_exporter.collectors.metadata import MetadataCollector
    from sollol_exporter.collectors.ollama import OllamaCollector
    from sollol_exporter.collectors.redis import RedisCollector
    from sollol_exporter.collectors.routing import RoutingCollector
    from sollol_exporter.collectors.rpc_backends import RpcBackendsCollector
    from sollol_exporter.collectors.rpc_nodes import RpcNodesCollector

    collectors: list[Collector] = [
        RedisCollector(),
        MetadataCollector(),
        GpuCollector(),
        RpcNodesCollector(),
        RoutingCollector(),
        CoordinatorCollector(),
        RpcBackendsCollector(),
        OllamaCollector(config.ollama.max_models),
    ]
    if config.dashboard.enabled:
        collectors.append(ApplicationsCollector())
    if config.events.enabled:
        collectors.append(EventsCollector())
    collectors = [c for c in collectors if c.name not in config.disabled_collectors]
    collectors.append(ExporterCollector([c.name for c in collectors]))
    return collectors
