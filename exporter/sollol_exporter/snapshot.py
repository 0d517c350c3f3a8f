"""One collection as the collectors see it: immutable, complete (what did not answer in time says so)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sollol_exporter import metadata as metadata_model
from sollol_exporter.addresses import Address
from sollol_exporter.cluster import RoutingView
from sollol_exporter.events.counts import EventsView
from sollol_exporter.probes import ProbeResult, Target
from sollol_exporter.sources import coordinator as coordinator_source
from sollol_exporter.sources import dashboard as dashboard_source
from sollol_exporter.sources import ollama as ollama_source
from sollol_exporter.sources.redis_values import GpuReport, Registration

NOT_IN_TIME = "no answer within the scrape budget"


def _empty() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True)
class RedisStatus:
    up: bool
    error: str = ""
    duration: float = 0.0
    stream_length: int | None = None


@dataclass(frozen=True)
class Backend:
    target: Target
    probe: str
    sources: frozenset[str]
    coordinators: frozenset[str]
    result: ProbeResult
    state: str


@dataclass(frozen=True)
class Snapshot:
    now: float
    budget: float
    redis: RedisStatus
    metadata: metadata_model.Current | None = None
    metadata_readings: Mapping[str, metadata_model.Reading] = field(default_factory=_empty)
    fresh_readings: tuple[metadata_model.Reading, ...] = ()
    gpu: tuple[GpuReport, ...] = ()
    registrations: tuple[Registration, ...] = ()
    routing: RoutingView | None = None
    coordinators: Mapping[str, coordinator_source.Reading] = field(default_factory=_empty)
    backends: Mapping[Address, Backend] = field(default_factory=_empty)
    handshakes: Mapping[Address, tuple[ProbeResult, float]] = field(default_factory=_empty)
    ollama: Mapping[Address, ollama_source.Reading] = field(default_factory=_empty)
    ollama_sources: Mapping[Address, frozenset[str]] = field(default_factory=_empty)
    dashboard: dashboard_source.Reading | None = None
    events: EventsView | None = None
    # (kind, name) -> whether that optional part is expected (presence.py); names: the address of Redis and the
    # dashboard, coordinator labels
    expected: Mapping[tuple[str, str], bool] = field(default_factory=_empty)
    failures: Mapping[str, str] = field(default_factory=_empty)
    durations: Mapping[str, float] = field(default_factory=_empty)
    invalid: Mapping[str, int] = field(default_factory=_empty)
    dropped: Mapping[str, int] = field(default_factory=_empty)


def is_expected(snapshot: Snapshot, kind: str, name: str | None = None) -> bool:
    """Whether the part (the only one of its kind if `name` is None) is expected; True when the snapshot does not say."""
    return all(value for (k, n), value in snapshot.expected.items() if k == kind and (name is None or n == name))


def frozen(mapping: dict) -> Mapping:
    return MappingProxyType(dict(mapping))
