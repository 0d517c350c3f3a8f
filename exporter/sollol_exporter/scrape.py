"""One collection of the whole cluster, shared by every scrape that arrives while it runs.

Phase 1 reads Redis (it names the targets), phase 2 probes every target concurrently within the scrape's
deadline, phase 3 renders fresh metric families. A target that has not answered by the deadline is reported
down; a request still running from an earlier scrape is never started again (one request per target).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable

from prometheus_client.core import Metric

from sollol_exporter import metadata as metadata_model
from sollol_exporter.collectors import build_collectors
from sollol_exporter.collectors.rpc_backends import BackendTarget, backend_targets
from sollol_exporter.config import Config
from sollol_exporter.labels import Address, parse_address
from sollol_exporter.logs import fields
from sollol_exporter.metadata import MetadataStore
from sollol_exporter.probes import ProbeResult, ggml_rpc, grpc_health, tcp
from sollol_exporter.sources import coordinator as coordinator_source
from sollol_exporter.sources.coordinator import CoordinatorClient
from sollol_exporter.sources.dashboard import DashboardClient
from sollol_exporter.sources.dashboard import Reading as DashboardReading
from sollol_exporter.sources.ollama import OllamaClient
from sollol_exporter.sources.ollama import Reading as OllamaReading
from sollol_exporter.sources.redis_reader import RedisReader, Snapshot
from sollol_exporter.values import BadValue

log = logging.getLogger(__name__)


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


@dataclass
class Gathered:
    """Everything one collection saw; the collectors render it."""

    now: float
    deadline: float
    redis: Snapshot = field(default_factory=Snapshot)
    metadata: metadata_model.Current | None = None
    coordinators: dict[str, coordinator_source.Reading] = field(default_factory=dict)
    rpc_targets: dict[Address, BackendTarget] = field(default_factory=dict)
    rpc_results: dict[Address, ProbeResult] = field(default_factory=dict)
    ollama_sources: dict[Address, set[str]] = field(default_factory=dict)
    ollama: dict[Address, Any] = field(default_factory=dict)
    dashboard: Any = None
    store: MetadataStore | None = None
    handshakes: dict[Address, Any] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    budget: float = 0.0

    def fail(self, collector: str, message: str) -> None:
        self.failures.setdefault(collector, message)

    def count_invalid(self, collector: str, count: int) -> None:
        if count:
            self.invalid[collector] = self.invalid.get(collector, 0) + count


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
    REDIS_COLLECTORS = ("redis", "metadata", "gpu", "rpc_nodes", "routing")

    def __init__(self, config: Config):
        self.config = config
        r = config.redis
        self.redis = RedisReader(r.url, r.timeout, r.max_value_bytes, r.scan_count, r.routing_stream)
        self.store = MetadataStore(config.metadata.retention, config.metadata.stats_max_age)
        self.coordinators = [CoordinatorClient(c) for c in config.coordinators]
        o = config.ollama
        self.ollama = OllamaClient(o.timeout, o.host_header, o.version_interval)
        d = config.dashboard
        self.dashboard = DashboardClient(d.url, d.timeout) if d.enabled else None
        self.pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="probe")
        self.single = SingleFlight(self.pool)
        self.failures = FailureLog()
        self.collectors = build_collectors(config)
        self.last: Gathered | None = None
        self.handshakes: dict[Address, tuple[ggml_rpc.Handshake, float]] = {}
        self.handshake_backoff: dict[Address, float] = {}
        self._lock = threading.Lock()
        self._in_flight: Future | None = None
        self._runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collect")
        self._grpc_runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="grpc")

    def close(self) -> None:
        self._runner.shutdown(wait=False, cancel_futures=True)
        self._grpc_runner.shutdown(wait=False, cancel_futures=True)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.redis.close()

    def collect(self, timeout: float) -> list[Metric]:
        """Metric families for one scrape that may take `timeout` seconds; joins a collection already running."""
        with self._lock:
            if self._in_flight is None or self._in_flight.done():
                self._in_flight = self._runner.submit(self._collect, time.monotonic() + timeout, timeout)
            future = self._in_flight
        return future.result()

    def _collect(self, deadline: float, budget: float) -> list[Metric]:
        gathered = Gathered(now=time.time(), deadline=deadline, budget=budget, store=self.store)
        self._read_redis(gathered)
        self._probe(gathered)
        families = self._render(gathered)
        self.last = gathered
        return families

    def _read_redis(self, g: Gathered) -> None:
        started = time.monotonic()
        g.redis = self.redis.read()
        if not g.redis.up:
            for name in self.REDIS_COLLECTORS:
                g.fail(name, f"redis unreachable: {g.redis.error}")
        elif g.redis.metadata is not None and g.redis.metadata.error:
            g.fail("metadata", f"sollol:router:metadata: {g.redis.metadata.error}")
            g.metadata = metadata_model.Current(True, g.redis.metadata_ttl, "invalid", error=g.redis.metadata.error)
        else:
            raw = g.redis.metadata.raw if g.redis.metadata else None
            try:
                g.metadata = self.store.update(raw, g.redis.metadata_ttl, g.now)
                if g.metadata.reading:
                    g.count_invalid("metadata", g.metadata.reading.invalid_entries)
            except BadValue as err:
                g.fail("metadata", str(err))
                g.metadata = metadata_model.Current(True, g.redis.metadata_ttl, "invalid", error=str(err))
        if g.redis.routing_error:
            g.fail("routing", g.redis.routing_error)
        g.durations["redis"] = time.monotonic() - started

    def _ollama_targets(self) -> dict[Address, set[str]]:
        targets: dict[Address, set[str]] = {}
        for node in self.config.ollama.nodes:
            targets.setdefault(parse_address(node, 11434), set()).add("config")
        if self.config.ollama.discover:
            for node in self.store.node_targets():
                targets.setdefault(node, set()).add("metadata")
        return targets

    def _probe(self, g: Gathered) -> None:
        started = time.monotonic()
        names = [c.name for c in self.coordinators]
        g.rpc_targets = backend_targets(self.config, names, self.store.rpc_backends(), g.redis.rpc_nodes.keys(), g)
        g.ollama_sources = self._ollama_targets()
        coordinator_futures = {c.name: self.single.submit(("coordinator", c.name), c.read, g.deadline) for c in self.coordinators}
        ollama_futures = {n: self.single.submit(("ollama", n), self.ollama.read, n, g.deadline) for n in g.ollama_sources}
        dashboard_future = self.single.submit("dashboard", self.dashboard.read, g.deadline) if self.dashboard else None
        if self._wants_handshakes(g):
            # A handshake must never reach a worker that a live coordinator holds: learn the coordinators' state
            # first, giving them a third of the budget; a coordinator still unknown after that counts as holding.
            wait(list(coordinator_futures.values()), timeout=max(0.0, (g.deadline - time.monotonic()) / 3))
            g.coordinators.update({name: r for name, f in coordinator_futures.items() if (r := _result(f)) is not None})
        # The worker probes run on this thread: queued behind slow HTTP targets in the pool they could miss the
        # deadline, and a worker that was never probed must not look like one that timed out.
        self._probe_rpc(g)
        pending = [*coordinator_futures.values(), *ollama_futures.values()]
        if dashboard_future:
            pending.append(dashboard_future)
        wait(pending, timeout=max(0.0, g.deadline - time.monotonic()))
        for name, future in coordinator_futures.items():
            g.coordinators[name] = _result(future) or coordinator_source.Reading(
                coordinator_source.HUNG, time.monotonic() - started, "no answer within the scrape budget"
            )
        for node, future in ollama_futures.items():
            g.ollama[node] = _result(future) or OllamaReading(False, time.monotonic() - started, "no answer within the scrape budget")
        if dashboard_future is not None:
            g.dashboard = _result(dashboard_future) or DashboardReading(False, time.monotonic() - started, "no answer within the scrape budget")
        g.durations["coordinator"] = max((r.duration for r in g.coordinators.values()), default=0.0)
        g.durations["ollama"] = max((r.duration for r in g.ollama.values()), default=0.0)
        if g.dashboard is not None:
            g.durations["applications"] = g.dashboard.duration

    def _wants_handshakes(self, g: Gathered) -> bool:
        return self.config.rpc_backends.handshake == "idle" or any(t.probe == "ggml" for t in g.rpc_targets.values())

    def _handshake_targets(self, g: Gathered) -> list[Address]:
        """Workers to probe with the ggml handshake this scrape: opted in (probe: ggml), or with handshake: idle
        every TCP-probed worker whose coordinators are all known to be down; none that is backing off."""
        now = time.monotonic()
        chosen = []
        for address, target in g.rpc_targets.items():
            if self.handshake_backoff.get(address, 0.0) > now:
                continue
            if target.probe == "ggml":
                chosen.append(address)
            elif target.probe == "tcp" and self.config.rpc_backends.handshake == "idle":
                known = [g.coordinators.get(name) for name in target.coordinators]
                if all(r is not None and r.state not in coordinator_source.UP_STATES for r in known):
                    chosen.append(address)
        return chosen

    def _probe_rpc(self, g: Gathered) -> None:
        started = time.monotonic()
        cfg = self.config.rpc_backends
        deep = self._handshake_targets(g) if self._wants_handshakes(g) else []
        handshakes = ggml_rpc.probe_all(deep, cfg.timeout, g.deadline)
        for address, handshake in handshakes.items():
            if handshake.outcome == ggml_rpc.BUSY:
                self.handshake_backoff[address] = time.monotonic() + cfg.handshake_backoff
            if handshake.version or handshake.devices:
                self.handshakes[address] = (handshake, g.now)
            g.rpc_results[address] = ProbeResult(handshake.outcome, handshake.duration, handshake.detail)
        for table in (self.handshakes, self.handshake_backoff):
            for address in [a for a in table if a not in g.rpc_targets]:
                del table[address]  # a worker no longer named anywhere
        g.handshakes = dict(self.handshakes)
        tcp_targets = [a for a, t in g.rpc_targets.items() if t.probe in ("tcp", "ggml") and a not in handshakes]
        grpc_targets = {a: (t.grpc_address, t.grpc_service) for a, t in g.rpc_targets.items() if t.probe == "grpc"}
        results = {}
        grpc_future = self._grpc_runner.submit(grpc_health.probe_all, list(grpc_targets.values()), cfg.timeout, g.deadline) if grpc_targets else None
        results.update(tcp.probe_all(tcp_targets, cfg.timeout, g.deadline, cfg.max_concurrency))
        if grpc_future is not None:
            by_target = grpc_future.result()
            results.update({a: by_target[target] for a, target in grpc_targets.items()})
        g.rpc_results.update(results)
        g.durations["rpc_backends"] = time.monotonic() - started

    def _render(self, g: Gathered) -> list[Metric]:
        families: list[Metric] = []
        for collector in self.collectors:
            started = time.monotonic()
            try:
                families.extend(collector.collect(g))
            except Exception as err:  # a collector bug must cost its own metrics, not the scrape
                log.error("collector failed", exc_info=True, extra=fields(collector=collector.name))
                g.fail(collector.name, f"internal error: {type(err).__name__}")
            g.durations[collector.name] = g.durations.get(collector.name, 0.0) + time.monotonic() - started
        self._log_failures(g)
        return families

    def _log_failures(self, g: Gathered) -> None:
        redis_down = not g.redis.up
        problems: dict[str, str] = {
            f"collector={name}": message
            for name, message in g.failures.items()
            if not (redis_down and name in self.REDIS_COLLECTORS and name != "redis")
        }
        for name, reading in g.coordinators.items():
            if reading.state != "ok" or reading.detail:
                problems[f"coordinator={name}"] = f"{reading.state}: {reading.detail}".rstrip(": ")
        for address, target in g.rpc_targets.items():
            if target.state not in ("reachable", "busy", "serving"):
                problems[f"backend={address}"] = f"{target.state}: {g.rpc_results[address].detail}".rstrip(": ")
        for address, reading in g.ollama.items():
            if not reading.up or reading.detail:
                problems[f"node={address}"] = reading.detail or "down"
        for key in problems:
            self.failures.report(key, problems[key])
        self.failures.clear_except(problems)


def _result(future: Future) -> Any:
    if future.done() and not future.cancelled() and future.exception() is None:
        return future.result()
    return None
