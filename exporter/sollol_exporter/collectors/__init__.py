"""Collectors: one class per group of families, each rendering fresh families from one collection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Protocol

from prometheus_client.core import Metric

if TYPE_CHECKING:
    from sollol_exporter.config import Config
    from sollol_exporter.scrape import Gathered


class Collector(Protocol):
    name: str

    def collect(self, gathered: "Gathered") -> Iterable[Metric]: ...


def build_collectors(config: "Config") -> list[Collector]:
    from sollol_exporter.collectors.applications import ApplicationsCollector
    from sollol_exporter.collectors.coordinator import CoordinatorCollector
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
        collectors.append(ApplicationsCollector(config.dashboard.forget_after))
    collectors.append(ExporterCollector([c.name for c in collectors]))
    return collectors
