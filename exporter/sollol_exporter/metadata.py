"""`sollol:router:metadata`: one key, four writers with incompatible layouts, last writer wins.

Each reading is classified (docs/sollol.md#metadata-variants), reduced to the fields the exporter uses, and kept per variant,
so that the RPC backend list written once by RayHybridRouter survives SynapticLlamas overwriting the key
every five seconds. A value written without a TTL (CoordinatorManager) never expires: if the key is gone while
such a value was the last one read, it was deleted, and what it said is forgotten at once.

Each list of targets in a value is capped at MAX_TARGETS (the rest are counted as dropped), and every number must
be plausible for its field (counted as invalid otherwise).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from sollol_exporter.addresses import Address, parse_address
from sollol_exporter.labels import sanitize
from sollol_exporter.peers import METADATA_KEY, OLLAMA_PORT, RPC_SERVER_PORT
from sollol_exporter.values import MAX_COUNT, MAX_MEBIBYTES, MAX_MILLISECONDS, BadValue, decode_json, epoch_seconds, flag, items, mapping, number, text

OLLAMA_POOL = "ollama_pool"  # variant A
RAY_HYBRID = "ray_hybrid_router"  # variant B
COORDINATOR_MANAGER = "coordinator_manager"  # variant C
SYNAPTIC_LLAMAS = "synaptic_llamas"  # variant D
OLLAMA_POOL_LEGACY = "ollama_pool_legacy"  # variant E, the hackall360 fork
UNKNOWN = "unknown"
VARIANTS = (OLLAMA_POOL, RAY_HYBRID, COORDINATOR_MANAGER, SYNAPTIC_LLAMAS, OLLAMA_POOL_LEGACY, UNKNOWN)

# TTL each writer sets; what is left of it tells the age when the value carries no timestamp.
_WRITER_TTL = {OLLAMA_POOL: 30, SYNAPTIC_LLAMAS: 30, OLLAMA_POOL_LEGACY: 30, RAY_HYBRID: 3600}
ANALYTICS_FIELDS = (
    "p50_latency_ms",
    "p95_latency_ms",
    "p99_latency_ms",
    "success_rate",
    "avg_duration_ms",
    "total_requests",
    "successful_requests",
)
MAX_TARGETS = 1_000  # Ollama nodes, and RPC workers, one value may name
MAX_TASK_TYPES = 100
_RATIO = (0.0, 1.0)
_COUNT = (0.0, MAX_COUNT)
_MILLISECONDS = (0.0, MAX_MILLISECONDS)
# The plausible range of every number read from the key; one outside it is invalid.
_RANGES = {
    "p50_latency_ms": _MILLISECONDS, "p95_latency_ms": _MILLISECONDS, "p99_latency_ms": _MILLISECONDS,
    "avg_duration_ms": _MILLISECONDS, "latency_ms": _MILLISECONDS, "avg_routing_time_ms": _MILLISECONDS,
    "success_rate": _RATIO, "hit_rate": _RATIO,
    "gpu_free_mem": (0.0, MAX_MEBIBYTES),
    "priority": (-MAX_COUNT, MAX_COUNT),
}


@dataclass
class NodeStats:
    """SOLLOL's own view of one Ollama node (variant A `nodes[]`)."""

    address: Address
    values: dict[str, float]


@dataclass
class Reading:
    """What one variant said, reduced to what is exported."""

    variant: str
    source: str = ""
    router_type: str = ""
    analytics: dict[str, float] = field(default_factory=dict)
    pool: dict[str, float] = field(default_factory=dict)
    nodes: list[NodeStats] = field(default_factory=list)
    node_targets: list[Address] = field(default_factory=list)
    rpc_backends: list[Address] = field(default_factory=list)
    synaptic: dict[str, float] = field(default_factory=dict)
    task_types: dict[str, float] = field(default_factory=dict)
    ray: dict[str, float] = field(default_factory=dict)
    invalid_entries: int = 0
    dropped_entries: int = 0  # targets past MAX_TARGETS, task types past MAX_TASK_TYPES
    seen_at: float = 0.0
    ttl: int | None = None  # the key's TTL when read: -1, written without one


@dataclass
class Current:
    """The key as read in this scrape."""

    present: bool
    ttl: int | None = None
    variant: str = ""
    age: float | None = None
    error: str = ""
    reading: Reading | None = None


def classify(doc: dict, ttl: int | None) -> str:
    metrics = doc.get("metrics")
    if doc.get("source") == "synaptic_llamas":
        return SYNAPTIC_LLAMAS
    if "source" in doc:
        return OLLAMA_POOL
    if isinstance(metrics, dict) and metrics.get("router_type") == "ray_hybrid":
        return RAY_HYBRID
    if isinstance(metrics, dict) and "analytics" in metrics and "total_pools" in metrics and "nodes" not in doc:
        return OLLAMA_POOL_LEGACY
    if "rpc_backends" in doc and (metrics == {} or ttl == -1):
        return COORDINATOR_MANAGER
    return UNKNOWN


def _capped(entries: Any, reading: Reading) -> list:
    listed = items(entries)
    reading.dropped_entries += max(0, len(listed) - MAX_TARGETS)
    return listed[:MAX_TARGETS]


def _addresses(entries: Any, default_port: int, reading: Reading) -> list[Address]:
    found = []
    for entry in _capped(entries, reading):
        try:
            found.append(parse_address(entry, default_port))
        except ValueError:
            reading.invalid_entries += 1
    return list(dict.fromkeys(found))


def _numbers(source: dict, names: tuple[str, ...], reading: Reading) -> dict[str, float]:
    """The named fields that are there; one that is not a plausible number for its field is counted as invalid."""
    values = {}
    for name in names:
        if name not in source:
            continue
        value = number(source[name], *_RANGES.get(name, _COUNT))
        if value is None:
            reading.invalid_entries += 1
        else:
            values[name] = value
    return values


_NODE_FIELDS = ("latency_ms", "success_rate", "total_requests", "failed_requests", "gpu_free_mem", "active_requests", "priority")
_CACHE_FIELDS = ("hits", "misses", "evictions", "size", "max_size", "hit_rate")
_SYNAPTIC_FIELDS = ("total_nodes", "healthy_nodes", "gpu_nodes", "routing_decisions", "avg_routing_time_ms")


def reduce(doc: dict, variant: str) -> Reading:
    reading = Reading(variant=variant)
    metrics = mapping(doc.get("metrics"))
    reading.source = sanitize(text(doc.get("source")) or ("synaptic_llamas" if variant == SYNAPTIC_LLAMAS else ""))
    reading.router_type = sanitize(text(metrics.get("router_type")) or "")
    reading.analytics = _numbers(mapping(metrics.get("analytics")), ANALYTICS_FIELDS, reading)
    if variant == OLLAMA_POOL_LEGACY and not reading.source:
        reading.source = "ollama_pool"
    pool = mapping(metrics.get("ollama_pool"))
    reading.pool = _numbers(pool, ("nodes_configured",), reading)
    reading.pool.update({f"cache_{k}": v for k, v in _numbers(mapping(pool.get("cache")), _CACHE_FIELDS, reading).items()})
    for entry in _capped(doc.get("nodes"), reading):
        if not isinstance(entry, dict):
            reading.invalid_entries += 1
            continue
        try:
            address = parse_address(entry, OLLAMA_PORT)
        except ValueError:
            reading.invalid_entries += 1
            continue
        reading.node_targets.append(address)
        if variant == OLLAMA_POOL:
            values = _numbers(entry, _NODE_FIELDS, reading)
            available = flag(entry.get("available"))
            if available is not None:
                values["available"] = available
            reading.nodes.append(NodeStats(address, values))
    reading.node_targets = list(dict.fromkeys(reading.node_targets))
    reading.rpc_backends = _addresses(doc.get("rpc_backends"), RPC_SERVER_PORT, reading)
    synaptic = mapping(metrics.get("synaptic_llamas"))
    reading.synaptic = _numbers(synaptic, _SYNAPTIC_FIELDS, reading)
    task_types = mapping(synaptic.get("task_types"))
    reading.dropped_entries += max(0, len(task_types) - MAX_TASK_TYPES)
    for name, count in list(task_types.items())[:MAX_TASK_TYPES]:
        value = number(count, *_COUNT)
        if value is None:
            reading.invalid_entries += 1
        else:
            reading.task_types[sanitize(name, 64)] = value
    ray_pools = mapping(metrics.get("ray_pools"))
    reading.ray = _numbers(ray_pools, ("num_pools", "backends_per_pool", "total_backends"), reading)
    if variant == RAY_HYBRID:
        reading.ray.update({f"ollama_{k}": v for k, v in _numbers(pool, ("nodes", "requests"), reading).items()})
    return reading


def parse(raw: bytes) -> dict:
    """The key's value as a JSON object; BadValue for anything else. Pure: callers parse outside their locks."""
    doc = decode_json(raw, METADATA_KEY)
    if not isinstance(doc, dict):
        raise BadValue(f"{METADATA_KEY}: expected a JSON object, got {type(doc).__name__}")
    return doc


class MetadataStore:
    """Keeps the last good reading of every variant for `retention` seconds."""

    def __init__(self, retention: float, stats_max_age: float):
        self.retention = retention
        self.stats_max_age = stats_max_age
        self.readings: dict[str, Reading] = {}
        self._first_seen: tuple[str, float] | None = None
        self._last_ttl: int | None = None  # of the value last read; None: the key was absent

    def update(self, raw: bytes | None, ttl: int | None, now: float | None = None, doc: dict | None = None) -> Current:
        """Record one read of the key (`doc`: the value already parsed by `parse`). Raises BadValue for content
        that is not a SOLLOL metadata object."""
        now = time.time() if now is None else now
        self._expire(now)
        if raw is None:
            if self._last_ttl == -1:
                self._forget_deleted()
            self._first_seen = self._last_ttl = None
            return Current(present=False, ttl=ttl)
        doc = parse(raw) if doc is None else doc
        self._last_ttl = ttl
        variant = classify(doc, ttl)
        reading = reduce(doc, variant)
        reading.seen_at, reading.ttl = now, ttl
        self.readings[variant] = reading
        if variant in (OLLAMA_POOL, RAY_HYBRID) and ttl == -1 and reading.rpc_backends:
            # CoordinatorManager replaced rpc_backends inside another writer's value and dropped its TTL.
            self.readings[COORDINATOR_MANAGER] = Reading(COORDINATOR_MANAGER, rpc_backends=reading.rpc_backends, seen_at=now, ttl=ttl)
        stamp = epoch_seconds(doc.get("timestamp"), now)
        if stamp is None and doc.get("timestamp") is not None:
            reading.invalid_entries += 1  # a timestamp from the future would make a stale value look fresh
        return Current(True, ttl, variant, self._age(stamp, variant, ttl, raw, now), reading=reading)

    def _forget_deleted(self) -> None:
        """The key held a value without a TTL and is gone: deleted, not expired. What such values said goes now,
        not after `retention` (a TTL-less value naming thousands of workers would otherwise be probed for an hour)."""
        for variant, reading in list(self.readings.items()):
            if reading.ttl == -1:
                del self.readings[variant]

    def _age(self, stamp: float | None, variant: str, ttl: int | None, raw: bytes, now: float) -> float | None:
        if stamp is not None:
            return max(0.0, now - stamp)
        if ttl is not None and ttl > 0 and variant in _WRITER_TTL:
            return float(max(0, _WRITER_TTL[variant] - ttl))
        digest = hashlib.sha1(raw).hexdigest()
        if self._first_seen is None or self._first_seen[0] != digest:
            self._first_seen = (digest, now)
        return now - self._first_seen[1]

    def _expire(self, now: float) -> None:
        for variant, reading in list(self.readings.items()):
            if now - reading.seen_at > self.retention:
                del self.readings[variant]

    def fresh(self, now: float | None = None) -> list[Reading]:
        """Readings recent enough for their statistics to be exported."""
        now = time.time() if now is None else now
        return [r for r in self.readings.values() if now - r.seen_at <= self.stats_max_age]

    def rpc_backends(self) -> list[Address]:
        return list(dict.fromkeys(a for r in self.readings.values() for a in r.rpc_backends))

    def node_targets(self) -> list[Address]:
        return list(dict.fromkeys(a for r in self.readings.values() for a in r.node_targets))
