"""What SOLLOL told the exporter, kept for the life of the process: across scrapes and across config reloads.

The clients built from the config (Redis connection, HTTP and probe settings) are replaced on reload; this is
not. Targets that no config or SOLLOL source names any more are forgotten at the next collection.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sollol_exporter import metadata as metadata_model
from sollol_exporter.addresses import Address, parse_address
from sollol_exporter.events.counts import EventCounts
from sollol_exporter.labels import OTHER, sanitize
from sollol_exporter.metadata import MetadataStore
from sollol_exporter.peers import OLLAMA_PORT
from sollol_exporter.presence import COORDINATOR, DASHBOARD, Presence
from sollol_exporter.probes import OK, ProbeResult
from sollol_exporter.sources.coordinator import Memory as CoordinatorMemory
from sollol_exporter.sources.redis_reader import stream_id
from sollol_exporter.values import MAX_CLOCK_SKEW, MAX_EVENT_BYTES, BadValue, decode_json, text

MAX_LABEL_VALUES = 200


@dataclass(frozen=True)
class RoutingView:
    events: dict[str, float]
    selections: dict[str, float]
    invalid_total: float
    last_event: float | None
    folded_total: float


@dataclass(frozen=True)
class RoutingEvent:
    event_type: str
    node: str | None  # OLLAMA_NODE_SELECTED only
    timestamp: float | None



def parse_routing_event(raw: bytes | None) -> RoutingEvent | None:
    """One stream entry's event, or None if it is not a routing event. Pure: runs outside the cluster lock."""
    if raw is None or len(raw) > MAX_EVENT_BYTES:
        return None
    try:
        event = decode_json(raw, "routing event")
    except BadValue:
        return None
    if not isinstance(event, dict) or not text(event.get("event_type")):
        return None
    node = None
    if event["event_type"] == "OLLAMA_NODE_SELECTED":
        try:
            node = str(parse_address(event.get("node_url"), OLLAMA_PORT))
        except ValueError:
            pass
    moment = None
    stamp = text(event.get("timestamp"))
    if stamp and len(stamp) < 64:
        try:
            parsed = datetime.fromisoformat(stamp)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)  # SOLLOL writes naive UTC
            moment = parsed.timestamp()
        except (ValueError, OverflowError):
            pass
    return RoutingEvent(sanitize(event["event_type"], 64), node, moment)


@dataclass
class RoutingCounts:
    """Routing decisions read from `sollol:routing_stream`, counted once each, and where reading stopped."""

    cursor: bytes | None = None
    events: dict[str, float] = field(default_factory=dict)
    selections: dict[str, float] = field(default_factory=dict)
    invalid_total: float = 0.0
    folded_total: float = 0.0
    last_event: float | None = None

    def _count(self, table: dict[str, float], key: str) -> None:
        if key not in table and len(table) >= MAX_LABEL_VALUES:
            key = OTHER
            self.folded_total += 1
        table[key] = table.get(key, 0.0) + 1.0

    def add(self, event: RoutingEvent | None, now: float) -> bool:
        """Count one parsed stream entry; False (and counted as invalid) if it was not a routing event."""
        if event is None:
            self.invalid_total += 1
            return False
        self._count(self.events, event.event_type)
        if event.node is not None:
            self._count(self.selections, event.node)
        # a timestamp further ahead than MAX_CLOCK_SKEW is not believed: it would pin the "last event" gauge
        if event.timestamp is not None and event.timestamp <= now + MAX_CLOCK_SKEW:
            self.last_event = max(self.last_event or 0.0, event.timestamp)
        return True

    def view(self) -> RoutingView:
        return RoutingView(dict(self.events), dict(self.selections), self.invalid_total, self.last_event, self.folded_total)


class GuardedTable(dict):
    """A dict whose reads and writes take the cluster's lock: handed to a client that records into it from its own
    thread while a collection may be forgetting entries."""

    def __init__(self, lock: threading.RLock):
        super().__init__()
        self._lock = lock

    def get(self, key, default=None):
        with self._lock:
            return super().get(key, default)

    def __setitem__(self, key, value) -> None:
        with self._lock:
            super().__setitem__(key, value)


@dataclass(frozen=True)
class RedisRecord:
    """What one Redis read changed in the cluster state, for the snapshot."""

    current: metadata_model.Current
    routing_invalid: int


class ClusterState:
    """Long-lived state, written only by its own methods under `lock` (the reads of the sources call them with
    what they read); snapshots copy from it under `lock`."""

    def __init__(self, retention: float, stats_max_age: float):
        self.lock = threading.RLock()
        self.metadata = MetadataStore(retention, stats_max_age)
        self.routing = RoutingCounts()
        self.coordinators: dict[str, CoordinatorMemory] = {}
        self.ollama_versions: dict[Address, tuple[str, float]] = GuardedTable(self.lock)
        self.handshakes: dict[Address, tuple[ProbeResult, float]] = {}
        self.handshake_backoff: dict[Address, float] = {}
        self.applications: dict[tuple[str, str], float] = {}  # (app, router_type) -> last seen
        self.registry_keys: list[str] = []  # suffixes of the sollol:rpc:node:* keys last read
        self.presence = Presence()
        self.events = EventCounts()
        self.events.announce = lambda name: self.presence.announce(COORDINATOR, name)
        self._subscriber = None
        self._subscription: tuple | None = None

    def subscribe(self, settings: tuple | None, start) -> None:
        """Keep the event subscriber running with these settings: the running one if they are unchanged (a reload
        must neither miss nor double-count events), else stop it and `start()` a new one; None stops it."""
        with self.lock:
            if settings == self._subscription and (settings is None or self._subscriber is not None):
                return
            old, self._subscriber, self._subscription = self._subscriber, None, settings
            if settings is not None:
                self._subscriber = start()  # takes the next generation: from now on only its messages count
            elif old is not None:
                self.events.new_generation()
        if old is not None:
            old.stop()  # outside the lock: snapshots must not wait for it
    # Recording what a source said: each read calls one of these with what it parsed (outside the lock).

    def record_redis(self, raw, doc: dict | None, metadata_error: str, events: list, now: float) -> RedisRecord:
        """A Redis read: the metadata key, the registration keys, new routing stream entries (each counted once,
        even if a replaced read of the same entries is still running)."""
        with self.lock:
            if metadata_error:
                current = metadata_model.Current(True, raw.metadata_ttl, "invalid", error=metadata_error)
            else:
                current = self.metadata.update(raw.metadata.raw if raw.metadata else None, raw.metadata_ttl, now, doc=doc)
            if "rpc_nodes" not in raw.section_errors:  # a listing that ran out of time says nothing of what is gone
                self.registry_keys = list(raw.rpc_nodes)
            if metadata_model.RAY_HYBRID in self.metadata.readings:
                # RayHybridRouter starts the dashboard service. Its RPC workers announce no coordinator: it starts
                # llama-server only for the first request that needs it, so workers can be there for hours without one.
                self.presence.announce(DASHBOARD)
            routing, invalid = self.routing, 0
            last = stream_id(routing.cursor) if routing.cursor is not None and not raw.routing_reset else (-1, -1)
            for entry_id, event in events:
                if stream_id(entry_id) > last:
                    invalid += 0 if routing.add(event, now) else 1
            if raw.routing_cursor is not None and (raw.routing_reset or routing.cursor is None
                                                   or stream_id(raw.routing_cursor) > stream_id(routing.cursor)):
                routing.cursor = raw.routing_cursor
            return RedisRecord(current, invalid)

    def record_applications(self, present: set[tuple[str, str]], now: float, forget_after: float, cap: int) -> tuple[list, int]:
        """Applications seen in the dashboard's registry; (the vanished ones still reported, how many were dropped
        by `cap`). A registry that churns names must not grow the vanished list without bound: the oldest go first."""
        with self.lock:
            known = self.applications
            for key in present:
                known[key] = now
            for key, seen in list(known.items()):
                if key not in present and now - seen > forget_after:
                    del known[key]
            dropped = 0
            excess = len(known) - cap
            if excess > 0:
                for key in sorted((k for k in known if k not in present), key=lambda k: known[k])[:excess]:
                    del known[key]
                    dropped += 1
            return sorted(key for key in known if key not in present), dropped

    def record_handshakes(self, results: dict, now: float, backoff: float) -> None:
        """ggml handshakes: one that did not complete (busy, stalled after HELLO, a protocol error, nobody there)
        backs off for `backoff` seconds, the worker probed by connect-and-close meanwhile; one that answered is kept."""
        with self.lock:
            for target, result in results.items():
                if result.outcome != OK:
                    self.handshake_backoff[target.address] = time.monotonic() + backoff
                if result.version or result.devices:
                    self.handshakes[target.address] = (result, now)

    def redis_answered(self) -> None:
        """A read of Redis worked: a subscriber backing off after a failure tries again now."""
        subscriber = self._subscriber
        if subscriber is not None and not self.events.subscribed:
            subscriber.retry_now()

    def subscriber_connecting(self) -> bool:
        """True while the running subscriber has not yet subscribed or failed once: not a failure yet."""
        subscriber = self._subscriber
        return subscriber is not None and not subscriber.tried.is_set()

    def close(self) -> None:
        self.subscribe(None, None)

    def configure(self, retention: float, stats_max_age: float) -> None:
        with self.lock:
            self.metadata.retention = retention
            self.metadata.stats_max_age = stats_max_age

    def coordinator(self, name: str) -> CoordinatorMemory:
        with self.lock:
            return self.coordinators.setdefault(name, CoordinatorMemory())

    def forget(self, coordinators: set[str], workers: set[Address], nodes: set[Address]) -> None:
        """Drop what is kept about targets that nothing names any more."""
        with self.lock:
            for name in [n for n in self.coordinators if n not in coordinators]:
                del self.coordinators[name]
            self.presence.forget(COORDINATOR, coordinators)
            for table in (self.handshakes, self.handshake_backoff):
                for address in [a for a in table if a not in workers]:
                    del table[address]
            for node in [n for n in self.ollama_versions if n not in nodes]:
                del self.ollama_versions[node]
