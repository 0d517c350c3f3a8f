"""The exporter config's schema: one dataclass per section, with every default (an empty file, or none, monitors a
default SOLLOL install on localhost). A new key is a field here; schema.py reads it from the file."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from sollol_exporter import redact
from sollol_exporter.addresses import parse_address
from sollol_exporter.config.schema import count, duration, internal
from sollol_exporter.config.secret_files import read_secret_file
from sollol_exporter.peers import (
    COORDINATOR_PORT,
    DASHBOARD_PORT,
    OLLAMA_ACTIVITY_CHANNEL,
    REDIS_PORT,
    RPC_ACTIVITY_CHANNEL,
    TRACES_CHANNEL,
)


@dataclass
class RedisConfig:
    url: str = f"redis://localhost:{REDIS_PORT}/0"
    timeout: float = duration(2.0)
    max_value_bytes: int = count(1_048_576)
    # Redis walks this many keys per SCAN call, blocking its other clients meanwhile: a step, not the whole keyspace.
    scan_count: int = count(500, maximum=100_000)
    routing_stream: bool = True
    required: bool = False  # expected from the first scrape, even with the URL from SOLLOL_REDIS_URL (presence.py)


@dataclass
class MetadataConfig:
    retention: float = duration(3600.0, zero="only the value in the key now is used")
    stats_max_age: float = duration(60.0)


@dataclass
class CoordinatorConfig:
    url: str = f"http://localhost:{COORDINATOR_PORT}"
    name: str = ""
    api_key: str = ""
    api_key_file: str = ""
    metrics: bool = True
    props_interval: float = duration(300.0, zero="/props at every scrape")
    timeout: float = duration(5.0)
    rpc_backends: list[str] = field(default_factory=list)

    def api_key_from_file(self) -> str:
        """The key in api_key_file now (read at every use, so that a rotated key is taken); OSError or ValueError
        with the reason, never the content."""
        return read_secret_file(os.path.expanduser(self.api_key_file))


@dataclass
class GrpcProbeConfig:
    port: int = 0
    service: str = ""


@dataclass
class RpcBackendConfig:
    address: str = ""
    probe: Literal["", "tcp", "grpc", "ggml"] = ""
    grpc: GrpcProbeConfig = field(default_factory=GrpcProbeConfig)


@dataclass
class RpcBackendsConfig:
    discover: bool = True
    probe: Literal["tcp", "grpc"] = "tcp"
    timeout: float = duration(2.0)
    handshake: Literal["off", "idle"] = "off"
    handshake_backoff: float = duration(300.0)
    max_concurrency: int = count(1024)
    grpc: GrpcProbeConfig = field(default_factory=GrpcProbeConfig)
    static: list[RpcBackendConfig] = field(default_factory=list)


@dataclass
class OllamaConfig:
    discover: bool = True
    nodes: list[str] = field(default_factory=list)
    timeout: float = duration(2.0)
    max_models: int = count(20, zero="every loaded model is summed into model=\"other\"")
    host_header: str = ""
    version_interval: float = duration(600.0, zero="/api/version at every scrape")


@dataclass
class DashboardConfig:
    enabled: bool = True
    url: str = f"http://localhost:{DASHBOARD_PORT}"
    timeout: float = duration(2.0)
    forget_after: float = duration(3600.0, zero="a vanished application is dropped at once, without an up 0 series")
    required: bool = False


@dataclass
class ScrapeConfig:
    timeout: float = duration(10.0)
    timeout_margin: float = duration(0.5, zero="the whole of Prometheus' scrape timeout is used")


@dataclass
class EventChannelsConfig:
    ollama: str = OLLAMA_ACTIVITY_CHANNEL
    rpc: str = RPC_ACTIVITY_CHANNEL
    traces: str = TRACES_CHANNEL


@dataclass
class EventsConfig:
    enabled: bool = True
    channels: EventChannelsConfig = field(default_factory=EventChannelsConfig)
    max_nodes: int = count(100, maximum=100_000)
    max_models: int = count(100, maximum=100_000)
    max_label_sets: int = count(1000, maximum=100_000)


@dataclass
class Config:
    redis: RedisConfig = field(default_factory=RedisConfig)
    metadata: MetadataConfig = field(default_factory=MetadataConfig)
    coordinators: list[CoordinatorConfig] = field(default_factory=lambda: [CoordinatorConfig()])
    rpc_backends: RpcBackendsConfig = field(default_factory=RpcBackendsConfig)
    ollama: OllamaConfig = field(default_factory=OllamaConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    scrape: ScrapeConfig = field(default_factory=ScrapeConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    # Parts the config file itself names ("redis", "coordinators", "dashboard"): those are expected from the start.
    declared: frozenset[str] = internal(frozenset())
    # Collectors turned off with --no-collector.<name>: neither read nor rendered.
    disabled_collectors: frozenset[str] = internal(frozenset())


def coordinator_label(coordinator: CoordinatorConfig) -> str:
    """The `coordinator` label: the configured name, else host:port of its URL."""
    return coordinator.name or str(parse_address(coordinator.url, 80))


def summary(config: Config) -> dict[str, Any]:
    """The config as a dict for the landing page: keys masked, and user information and secret parameters of URLs."""
    shown = dataclasses.asdict(config)
    for spec in dataclasses.fields(config):
        if spec.metadata.get("internal"):
            del shown[spec.name]
    return redact.mapping(shown)
