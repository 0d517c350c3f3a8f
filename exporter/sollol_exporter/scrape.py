"""Scrapes that each keep their own deadline, and the tasks that read each source.

A collection (collection.py) reads Redis (it names the targets), then probes every target concurrently, one
request per target at a time (a request still running from an earlier collection is joined, never started again).
At most one collection runs; a scrape that arrives while one runs joins it and waits only until its own deadline,
then renders what is known by then: anything unfinished is reported as not answered in time.

What SOLLOL told us lives in the ClusterState, which outlives this scraper across config reloads; the tasks
that read a source also record what it said, so a result is counted once even if no scrape waited for it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from prometheus_client.core import Metric

from sollol_exporter import metadata as metadata_model
from sollol_exporter import presence
from sollol_exporter.cluster import ClusterState, parse_routing_event
from sollol_exporter.collection import REDIS_COLLECTORS, Collection, RedisResult
from sollol_exporter.collectors import build_collectors
from sollol_exporter.config import Config, coordinator_label
from sollol_exporter.events import OLLAMA, RPC, TRACES
from sollol_exporter.events.subscriber import Subscriber
from sollol_exporter.labels import Address, parse_address
from sollol_exporter.logs import fields
from sollol_exporter.snapshot import Snapshot, frozen
from sollol_exporter.sources import redis_values
from sollol_exporter.sources.coordinator import CoordinatorClient
from sollol_exporter.sources.coordinator import Reading as CoordinatorReading
from sollol_exporter.sources.dashboard import MAX_APPLICATIONS, DashboardClient
from sollol_exporter.sources.dashboard import Reading as DashboardReading
from sollol_exporter.sources.ollama import OllamaClient
from sollol_exporter.sources.redis_reader import RedisReader, stream_id
from sollol_exporter.values import BadValue
from sollol_exporter.workers import UP_STATES, Worker, workers

log = logging.getLogger(__name__)
MAX_KNOWN_APPLICATIONS = 2 * MAX_APPLICATIONS  # present and vanished ones kept for forget_after


# SOLLOL names a coordinator on this machine by whichever loopback address it was given: all of them are this one.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


def coordinator_addresses(config: Config) -> dict[Address, str]:
    """The address an event may name each configured coordinator by, with its label."""
    names: dict[Address, str] = {}
    for coordinator in config.coordinators:
        address, label = parse_address(coordinator.url, 80), coordinator_label(coordinator)
        aliases = [Address(host, address.port) for host in LOOPBACK_HOSTS] if address.host in LOOPBACK_HOSTS else []
        for each in aliases:
            names.setdefault(each, label)
        names[address] = label
    return names


class FailureLog:
    """One log line when something starts failing or changes how it fails, one when it recovers."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    def report(self, key: str, message: str) -> None:
        with self._lock:
            if self._last.get(key) == message:
                return
            self._last[key] = message
        log.warning("failing", extra=fields(what=key, error=message))

    def clear_except(self, current: dict[str, str]) -> None:
        with self._lock:
            recovered = [key for key in self._last if key not in current]
            for key in recovered:
                del self._last[key]
        for key in recovered:
            log.info("recovered", extra=fields(what=key))


class SingleFlight:
    """At most one running call per key; a caller that finds one running gets the same future."""

    def __init__(self, pool: ThreadPoolExecutor):
        self.pool = pool
        self._running: dict[Any, Future] = {}
        self._lock = threading.Lock()

    def submit(self, key: Any, fn: Callable, *args: Any) -> Future:
        with self._lock:
            running = self._running.get(key)
            if running is not None and not running.done():
                return running
            future = self.pool.submit(fn, *args)
            self._running[key] = future
            return future


class Scraper:
    def __init__(self, config: Config, cluster: ClusterState | None = None):
        """`cluster`: the state to carry over from the scraper this one replaces (None: a new one, owned here)."""
        self.config = config
        self._owns_cluster = cluster is None
        self.cluster = cluster or ClusterState(config.metadata.retention, config.metadata.stats_max_age)
        self.cluster.configure(config.metadata.retention, config.metadata.stats_max_age)
        r = config.redis
        routing = r.routing_stream and "routing" not in config.disabled_collectors
        self.redis = RedisReader(r.url, r.timeout, r.max_value_bytes, r.scan_count, routing, read_gpu="gpu" not in config.disabled_collectors)
        self.coordinators = [CoordinatorClient(c, self.cluster.coordinator(coordinator_label(c))) for c in config.coordinators]
        o = config.ollama
        self.ollama = OllamaClient(o.timeout, o.host_header, o.version_interval, self.cluster.ollama_versions)
        d = config.dashboard
        self.dashboard = DashboardClient(d.url, d.timeout) if d.enabled else None
        self.pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="probe")
        self.single = SingleFlight(self.pool)
        self.failures = FailureLog()
        self.collectors = build_collectors(config)
        self.last: Snapshot | None = None
        self._lock = threading.Lock()
        self._current: Collection | None = None
        self._runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collect")
        self._subscribe()

    def _subscribe(self) -> None:
        events, redis_config = self.config.events, self.config.redis
        self.cluster.events.configure(events.max_nodes, events.max_models, events.max_label_sets)
        if not events.enabled or "events" in self.config.disabled_collectors:
            self.cluster.subscribe(None, None)
            return
        channels = {events.channels.ollama: OLLAMA, events.channels.rpc: RPC, events.channels.traces: TRACES}
        names = coordinator_addresses(self.config)
        settings = (redis_config.url, redis_config.timeout, tuple(sorted(channels.items())), tuple(sorted(names.items())))
        self.cluster.subscribe(settings, lambda: Subscriber(redis_config.url, channels, self.cluster.events, names, redis_config.timeout).start())

    def close(self) -> None:
        self._runner.shutdown(wait=False, cancel_futures=True)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.redis.close()
        if self._owns_cluster:
            self.cluster.close()

    def collect(self, timeout: float) -> list[Metric]:
        """Metric families for one scrape that may take `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._current is None or self._current.done.is_set():
                self._current = Collection(self, deadline, timeout)
                self._runner.submit(self._current.run)
            collection = self._current
        collection.done.wait(max(0.0, deadline - time.monotonic()))
        snapshot = collection.freeze(timeout)
        self.last = snapshot
        families = self._render(snapshot)
        self._log_failures(snapshot)
        return families

    # Tasks: each reads one source and records what it said in the cluster state.

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
            return RedisResult(False, raw.error, duration)
        now = time.time()
        # Parse outside the lock: a scrape that freezes a snapshot waits for it.
        doc, metadata_error = self._parse_metadata(raw)
        events = [(entry_id, parse_routing_event(event)) for entry_id, event in raw.routing_events]
        routing_invalid = 0
        with cluster.lock:
            current = self._record_metadata(raw, doc, metadata_error, now)
            cluster.registry_keys = list(raw.rpc_nodes)
            self._record_announcements()
            routing = cluster.routing
            # Count each entry once, even if a replaced scraper's read of the same entries is still running.
            last = stream_id(routing.cursor) if routing.cursor is not None and not raw.routing_reset else (-1, -1)
            for entry_id, event in events:
                if stream_id(entry_id) > last:
                    routing_invalid += 0 if routing.add(event, now) else 1
            if raw.routing_cursor is not None and (raw.routing_reset or routing.cursor is None
                                                   or stream_id(raw.routing_cursor) > stream_id(routing.cursor)):
                routing.cursor = raw.routing_cursor
        return RedisResult(
            True, "", duration, current, redis_values.gpu_reports(raw.gpu), redis_values.registrations(raw.rpc_nodes),
            routing_invalid, raw.routing_error, raw.routing_stream_length, dict(raw.dropped),
        )

    def _record_announcements(self) -> None:
        """RayHybridRouter's metadata means it started the dashboard service. RPC workers in the metadata or in
        registration keys do not announce a coordinator: RayHybridRouter starts llama-server only for the first
        request that needs it, so workers can be there for hours without one."""
        if metadata_model.RAY_HYBRID in self.cluster.metadata.readings:
            self.cluster.presence.announce(presence.DASHBOARD)

    def read_coordinator(self, client: CoordinatorClient, deadline: float, health_only: bool = False) -> CoordinatorReading:
        reading = client.read(deadline, health_only)
        if reading.answered:
            self.cluster.presence.answered(presence.COORDINATOR, client.name)
        return reading

    @staticmethod
    def _parse_metadata(raw) -> tuple[dict | None, str]:
        if raw.metadata is None or raw.metadata.raw is None:
            return None, raw.metadata.error if raw.metadata is not None else ""
        try:
            return metadata_model.parse(raw.metadata.raw), ""
        except BadValue as err:
            return None, str(err)

    def _record_metadata(self, raw, doc: dict | None, error: str, now: float) -> metadata_model.Current:
        if error:
            return metadata_model.Current(True, raw.metadata_ttl, "invalid", error=error)
        return self.cluster.metadata.update(raw.metadata.raw if raw.metadata else None, raw.metadata_ttl, now, doc=doc)

    def read_dashboard(self, deadline: float) -> DashboardReading:
        reading = self.dashboard.read(deadline)
        if reading.answered:
            self.cluster.presence.answered(presence.DASHBOARD, presence.where(self.config.dashboard.url))
        if not reading.up:
            return reading
        names = Counter(app.name for app in reading.applications)
        present = {}
        for app in sorted(reading.applications, key=lambda a: (a.name, a.app_id)):
            app.label = app.name if names[app.name] == 1 else f"{app.name} ({app.app_id[:8]})"
            present.setdefault((app.label, app.router_type), app)
        reading.applications = list(present.values())
        now, forget_after = time.time(), self.config.dashboard.forget_after
        with self.cluster.lock:
            known = self.cluster.applications
            for key in present:
                known[key] = now
            for key, seen in list(known.items()):
                if key not in present and now - seen > forget_after:
                    del known[key]
            # A registry that churns names must not grow the vanished list without bound: the oldest go first.
            excess = len(known) - MAX_KNOWN_APPLICATIONS
            if excess > 0:
                for key in sorted((k for k in known if k not in present), key=known.get)[:excess]:
                    del known[key]
                    reading.dropped_entries += 1
            reading.vanished = sorted(key for key in known if key not in present)
        return reading

    def ollama_targets(self) -> dict[Address, set[str]]:
        targets: dict[Address, set[str]] = {}
        for node in self.config.ollama.nodes:
            targets.setdefault(parse_address(node, 11434), set()).add("config")
        if self.config.ollama.discover:
            with self.cluster.lock:
                discovered = self.cluster.metadata.node_targets()
            for node in discovered:
                targets.setdefault(node, set()).add("metadata")
        return targets

    def workers(self) -> tuple[dict[Address, Worker], int]:
        with self.cluster.lock:
            from_metadata = self.cluster.metadata.rpc_backends()
            registry = list(self.cluster.registry_keys)
        return workers(self.config, [c.name for c in self.coordinators], from_metadata, registry)

    def _render(self, snapshot: Snapshot) -> list[Metric]:
        families: list[Metric] = []
        failed: dict[str, str] = {}
        exporter = self.collectors[-1]
        for collector in self.collectors[:-1]:
            try:
                families.extend(collector.collect(snapshot))
            except Exception as err:  # a collector bug must cost its own metrics, not the scrape
                log.error("collector failed", exc_info=True, extra=fields(collector=collector.name))
                failed[collector.name] = f"internal error: {type(err).__name__}"
        if failed:
            snapshot = dataclasses.replace(snapshot, failures=frozen({**failed, **snapshot.failures}))
        families.extend(exporter.collect(snapshot))
        return families

    def _log_failures(self, s: Snapshot) -> None:
        problems: dict[str, str] = {
            f"collector={name}": message
            for name, message in s.failures.items()
            if not (not s.redis.up and name in REDIS_COLLECTORS and name != "redis")
        }
        for name, reading in s.coordinators.items():
            if not s.expected.get((presence.COORDINATOR, name), True):
                continue  # absent: the landing page says what to set
            if reading.state != "ok" or reading.detail:
                problems[f"coordinator={name}"] = f"{reading.state}: {reading.detail}".rstrip(": ")
        for address, backend in s.backends.items():
            if backend.state not in UP_STATES:
                problems[f"backend={address}"] = f"{backend.state}: {backend.result.detail}".rstrip(": ")
        for address, reading in s.ollama.items():
            if not reading.up or reading.detail:
                problems[f"node={address}"] = reading.detail or "down"
        for key in problems:
            self.failures.report(key, problems[key])
        self.failures.clear_except(problems)
