"""Everything one config reads from, built together and retired together.

`Sources` holds the clients built from one config and, for each kind of source, threads of its own (`Flights`), so
that slow Ollama nodes cannot starve the coordinators or the dashboard. Its reads record what a source said in the
cluster state through the state's own methods, and return what a snapshot needs; they never call back into the
scraper. A reload builds new Sources and retires the old ones: they close once the last collection or read using
them has finished, so a scrape running during a reload answers as if no reload had happened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from sollol_exporter import metadata as metadata_model
from sollol_exporter import presence
from sollol_exporter.addresses import Address, parse_address
from sollol_exporter.cluster import ClusterState, parse_routing_event
from sollol_exporter.collectors.names import CollectorName
from sollol_exporter.config import Config, coordinator_label
from sollol_exporter.peers import OLLAMA_PORT
from sollol_exporter.snapshot import RedisStatus
from sollol_exporter.sources import redis_values
from sollol_exporter.sources.coordinator import CoordinatorClient
from sollol_exporter.sources.coordinator import Reading as CoordinatorReading
from sollol_exporter.sources.dashboard import MAX_APPLICATIONS, Application, DashboardClient
from sollol_exporter.sources.dashboard import Reading as DashboardReading
from sollol_exporter.sources.ollama import OllamaClient
from sollol_exporter.sources.ollama import Reading as OllamaReading
from sollol_exporter.sources.redis_reader import RedisReader
from sollol_exporter.values import BadValue
from sollol_exporter.workers import Worker, workers

log = logging.getLogger(__name__)
MAX_KNOWN_APPLICATIONS = 2 * MAX_APPLICATIONS  # present and vanished ones kept for forget_after
REDIS, COORDINATORS, OLLAMA, DASHBOARD, WORKERS = "redis", "coordinators", "ollama", "dashboard", "workers"


@dataclass(frozen=True)
class RedisResult:
    """One read of Redis, parsed, after the cluster state has recorded it: what the snapshot says of Redis itself
    (`status`), and what the read found, for the collectors that render it."""

    status: RedisStatus
    metadata: metadata_model.Current | None = None
    gpu: redis_values.Parsed | None = None
    registrations: redis_values.Parsed | None = None
    routing_invalid: int = 0
    routing_error: str = ""
    dropped: dict | None = None
    section_errors: dict | None = None  # "gpu" / "rpc_nodes": why that prefix could not be listed this read


_PAYLOAD = "payload"  # kept in the Future's own attributes: a Future has no field for it


def payload_of(future: Future) -> Any:
    """The payload the read of `future` was submitted with."""
    return vars(future)[_PAYLOAD]


# A read whose deadline is this much earlier than a caller's is not shared with it: its answer would be bounded by
# another scrape's shorter budget.
JOIN_SLACK = 0.25


def _after(earlier: Future, earlier_deadline: float, fn: Callable, *args: Any) -> Any:
    wait([earlier], timeout=max(0.0, earlier_deadline - time.monotonic()) + JOIN_SLACK)
    return fn(*args)


class Flights:
    """Reads of one kind of source, on threads of their own. A caller that finds a read of the same target running
    shares it, unless that read must end before the caller's own deadline: then it reads again, once that read has
    ended, so that a target is never read twice at once. A read that has finished is never handed to a later
    caller."""

    def __init__(self, kind: str, threads: int):
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=kind)
        self._running: dict[Any, tuple[Future, float]] = {}
        self._lock = threading.Lock()

    def submit(self, key: Any, fn: Callable, *args: Any, deadline: float = float("inf"), payload: Any = None) -> tuple[Future, bool]:
        """The running read for `key` that may run until `deadline`, or a new one; True if it is new. A new one
        carries `payload` (see `payload_of`), for those that join it."""
        with self._lock:
            running = self._running.get(key)
            if running is not None and running[1] >= deadline - JOIN_SLACK:
                return running[0], False
            if running is None:
                future = self.pool.submit(fn, *args)
            else:  # one read of a target at a time: this one starts when the running one ends (by its deadline)
                future = self.pool.submit(_after, running[0], running[1], fn, *args)
            vars(future)[_PAYLOAD] = payload
            self._running[key] = (future, deadline)
        future.add_done_callback(lambda done: self._finished(key, done))
        return future, True

    def _finished(self, key: Any, future: Future) -> None:
        with self._lock:
            running = self._running.get(key)
            if running is not None and running[0] is future:
                del self._running[key]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class Sources:
    def __init__(self, config: Config, cluster: ClusterState):
        self.config = config
        self.cluster = cluster
        disabled = config.disabled_collectors
        r = config.redis
        self.redis = RedisReader(r.url, r.timeout, r.max_value_bytes, r.scan_count,
                                 r.routing_stream and CollectorName.ROUTING not in disabled, read_gpu=CollectorName.GPU not in disabled)
        self.coordinators = [CoordinatorClient(c, cluster.coordinator(coordinator_label(c))) for c in config.coordinators]
        o = config.ollama
        self.ollama = OllamaClient(o.timeout, o.host_header, o.version_interval, cluster.ollama_versions)
        d = config.dashboard
        self.dashboard = DashboardClient(d.url, d.timeout) if d.enabled and CollectorName.APPLICATIONS not in disabled else None
        self.flights = {
            REDIS: Flights("redis", 1),
            COORDINATORS: Flights("coordinator", max(1, min(16, len(self.coordinators)))),
            OLLAMA: Flights("ollama", 32),
            DASHBOARD: Flights("dashboard", 1),
            WORKERS: Flights("workers", 1),
        }
        self._users = 0
        self._retired = False
        self._lock = threading.Lock()
        self._workers: tuple[tuple, tuple[dict[Address, Worker], int]] | None = None  # (what Redis named, workers)

    # Lifecycle: held by every collection and read that uses it; closed once retired and no longer held.

    def hold(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            close = self._retired and self._users == 0
        if close:
            self._close()

    def retire(self) -> None:
        with self._lock:
            self._retired = True
            close = self._users == 0
        if close:
            self._close()

    def _close(self) -> None:
        for flights in self.flights.values():
            flights.close()
        self.redis.close()

    def submit(self, kind: str, key: Any, fn: Callable, *args: Any, deadline: float = float("inf"), payload: Any = None) -> Future:
        """Run a read of this kind (or join the one running for `key` that may run until `deadline`); the read holds
        these sources until it ends."""
        self.hold()
        try:
            future, new = self.flights[kind].submit(key, fn, *args, deadline=deadline, payload=payload)
        except RuntimeError:  # closed meanwhile: nothing to read with
            self.release()
            raise
        if new:
            future.add_done_callback(lambda _: self.release())
        else:
            self.release()
        return future

    # Targets: from the config and from what SOLLOL told us (the cluster state).

    def ollama_targets(self) -> dict[Address, set[str]]:
        targets: dict[Address, set[str]] = {}
        for node in self.config.ollama.nodes:
            targets.setdefault(parse_address(node, OLLAMA_PORT), set()).add("config")
        if self.config.ollama.discover:
            with self.cluster.lock:
                discovered = self.cluster.metadata.node_targets()
            for address in discovered:
                targets.setdefault(address, set()).add("metadata")
        return targets

    def workers(self) -> tuple[dict[Address, Worker], int]:
        """Every worker to probe. Built again only when what Redis names has changed (parsing a thousand configured
        addresses every scrape took a third of the time probing them takes); shared, so read only."""
        if self.config.rpc_backends.discover:
            with self.cluster.lock:
                from_metadata = tuple(self.cluster.metadata.rpc_backends())
                registry = tuple(self.cluster.registry_keys)
        else:
            from_metadata = registry = ()
        with self._lock:
            cached = self._workers
        if cached is not None and cached[0] == (from_metadata, registry):
            return cached[1]
        built = workers(self.config, [c.name for c in self.coordinators], from_metadata, registry)
        with self._lock:
            self._workers = ((from_metadata, registry), built)
        return built

    # Reads: each reads one source, records what it said in the cluster state, and returns what a snapshot needs.

    def read_redis(self, deadline: float) -> RedisResult:
        started = time.monotonic()
        cluster = self.cluster
        with cluster.lock:
            cursor = cluster.routing.cursor
        raw = self.redis.read(deadline, cursor)
        duration = time.monotonic() - started
        if raw.answered:
            cluster.presence.answered(presence.REDIS, presence.where(self.config.redis.url))
        if not raw.up:
            return RedisResult(RedisStatus(False, raw.error, duration))
        cluster.redis_answered()
        # Parse outside the lock: a scrape that freezes a snapshot waits for it.
        doc, metadata_error = _parse_metadata(raw)
        events = [(entry_id, parse_routing_event(event)) for entry_id, event in raw.routing_events]
        record = cluster.record_redis(raw, doc, metadata_error, events, time.time())
        return RedisResult(
            RedisStatus(True, "", duration, raw.routing_stream_length), record.current, redis_values.gpu_reports(raw.gpu),
            redis_values.registrations(raw.rpc_nodes), record.routing_invalid, raw.routing_error, dict(raw.dropped),
            dict(raw.section_errors),
        )

    def read_coordinator(self, client: CoordinatorClient, deadline: float, health_only: bool = False) -> CoordinatorReading:
        reading = client.read(deadline, health_only)
        if reading.answered:
            self.cluster.presence.answered(presence.COORDINATOR, client.name)
        return reading

    def read_ollama(self, node: Address, deadline: float) -> OllamaReading:
        return self.ollama.read(node, deadline)

    def read_dashboard(self, deadline: float) -> DashboardReading:
        assert self.dashboard is not None
        reading = self.dashboard.read(deadline)
        if reading.answered:
            self.cluster.presence.answered(presence.DASHBOARD, presence.where(self.config.dashboard.url))
        if not reading.up:
            return reading
        names = Counter(app.name for app in reading.applications)
        short = Counter(f"{app.name} ({app.app_id[:8]})" for app in reading.applications)
        present: dict[tuple[str, str], Application] = {}
        for app in sorted(reading.applications, key=lambda a: (a.name, a.app_id)):
            app.label = app.name if names[app.name] == 1 else f"{app.name} ({app.app_id[:8]})"
            if short[app.label] > 1:  # two ids that share their first characters: the whole id tells them apart
                app.label = f"{app.name} ({app.app_id})"
            present.setdefault((app.label, app.router_type), app)
        reading.applications = list(present.values())
        reading.vanished, dropped = self.cluster.record_applications(set(present), time.time(), self.config.dashboard.forget_after,
                                                                     MAX_KNOWN_APPLICATIONS)
        reading.dropped_entries += dropped
        return reading


def _parse_metadata(raw) -> tuple[dict | None, str]:
    if raw.metadata is None or raw.metadata.raw is None:
        return None, raw.metadata.error if raw.metadata is not None else ""
    try:
        return metadata_model.parse(raw.metadata.raw), ""
    except BadValue as err:
        return None, str(err)
