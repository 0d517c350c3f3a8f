"""Collectors: one class per group of families, each a pure renderer of one immutable Snapshot."""

from __future__ import annotations

from typing import Iterable, Protocol

from prometheus_client.core import Metric

from sollol_exporter.config import Config
from sollol_exporter.snapshot import Snapshot


class Collector(Protocol):
    name: str

    def collect(self, snapshot: Snapshot) -> Iterable[Metric]: ...


def build_collectors(config: Config) -> list[Collector]:
    """The collectors for this config; the exporter's own collector comes last (it reports on the others)."""
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
    collectors.append(ExporterCollector([c.name for c in collectors]))
    return collectors
