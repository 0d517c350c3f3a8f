"""Collections of the whole cluster, and scrapes that each keep their own deadline.

A collection reads Redis (it names the targets), then probes every target concurrently, one request per target
at a time (a request still running from an earlier collection is joined, never started again). At most one
collection runs; a scrape that arrives while one runs joins it and waits only until its own deadline, then
renders what is known by then: anything unfinished is reported as not answered in time.

What SOLLOL told us lives in the ClusterState, which outlives this scraper across config reloads; the tasks
that read a source also record what it said, so a result is counted once even if no scrape waited for it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable

from prometheus_client.core import Metric

from sollol_exporter import metadata as metadata_model
from sollol_exporter.cluster import ClusterState, parse_routing_event
from sollol_exporter.collectors import build_collectors
from sollol_exporter.config import Config, coordinator_label
from sollol_exporter.events import OLLAMA, RPC, TRACES
from sollol_exporter.events.subscriber import Subscriber
from sollol_exporter.labels import Address, parse_address
from sollol_exporter.logs import fields
from sollol_exporter.probes import TIMEOUT, ProbeResult, Target
from sollol_exporter.probes.dispatch import PROBERS
from sollol_exporter.snapshot import NOT_IN_TIME, Backend, RedisStatus, Snapshot, frozen
from sollol_exporter.sources import coordinator as coordinator_source
from sollol_exporter.sources import redis_values
from sollol_exporter.sources.coordinator import CoordinatorClient
from sollol_exporter.sources.dashboard import MAX_APPLICATIONS, DashboardClient
from sollol_exporter.sources.dashboard import Reading as DashboardReading
from sollol_exporter.sources.ollama import OllamaClient
from sollol_exporter.sources.ollama import Reading as OllamaReading
from sollol_exporter.sources.redis_reader import RedisReader, stream_id
from sollol_exporter.values import BadValue
from sollol_exporter.workers import UP_STATES, Worker, classify, workers

log = logging.getLogger(__name__)
REDIS_COLLECTORS = ("redis", "metadata", "gpu", "rpc_nodes", "routing")
MAX_KNOWN_APPLICATIONS = 2 * MAX_APPLICATIONS  # present and vanished ones kept for forget_after


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


@dataclass(frozen=True)
class RedisResult:
    """One read of Redis, parsed, after the cluster state has recorded it."""

    up: bool
    error: str
    duration: float
    metadata: metadata_model.Current | None = None
    gpu: redis_values.Parsed | None = None
    registrations: redis_values.Parsed | None = None
    routing_invalid: int = 0
    routing_error: str = ""
    stream_length: int | None = None
    dropped: dict | None = None


class Scraper:
    def __init__(self, config: Config, cluster: ClusterState | None = None):
        """`cluster`: the state to carry over from the scraper this one replaces (None: a new one, owned here)."""
        self.config = config
        self._owns_cluster = cluster is None
        self.cluster = cluster or ClusterState(config.metadata.retention, config.metadata.stats_max_age)
        self.cluster.configure(config.metadata.retention, config.metadata.stats_max_age)
        r = config.redis
        self.redis = RedisReader(r.url, r.timeout, r.max_value_bytes, r.scan_count, r.routing_stream)
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
        if not events.enabled:
            self.cluster.subscribe(None, None)
            return
        channels = {events.channels.ollama: OLLAMA, events.channels.rpc: RPC, events.channels.traces: TRACES}
        names = {parse_address(c.url, 80): coordinator_label(c) for c in self.config.coordinators}
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


class Collection:
    """One pass over every source. `run` fills it in on the collecting thread; `freeze` may be called from any
    scrape at any time and renders what is known by then."""

    def __init__(self, scraper: Scraper, deadline: float, budget: float):
        self.scraper = scraper
        self.deadline = deadline
        self.started = time.monotonic()
        self.now = time.time()
        self.done = threading.Event()
        self.redis_future: Future | None = None
        self.workers: dict[Address, Worker] | None = None
        self.invalid_workers = 0
        self.ollama_sources: dict[Address, set[str]] | None = None
        self.coordinator_futures: dict[str, Future] = {}
        self.ollama_futures: dict[Address, Future] = {}
        self.dashboard_future: Future | None = None
        self.rpc_results: dict[Target, ProbeResult] = {}
        self.rpc_duration: float | None = None
        budget_for_redis = max(scraper.config.redis.timeout, budget / 2)
        self.redis_deadline = min(deadline, self.started + budget_for_redis)

    def run(self) -> None:
        try:
            self._run()
        except Exception:  # a bug here must not leave scrapes waiting: they render what is known
            log.error("collection failed", exc_info=True)
        finally:
            self.done.set()

    def _run(self) -> None:
        s = self.scraper
        self.redis_future = s.single.submit("redis", s.read_redis, self.redis_deadline)
        wait([self.redis_future], timeout=max(0.0, self.redis_deadline - time.monotonic()))
        self.workers, self.invalid_workers = s.workers()
        self.ollama_sources = s.ollama_targets()
        self.coordinator_futures = {c.name: s.single.submit(("coordinator", c.name), c.read, self.deadline) for c in s.coordinators}
        self.ollama_futures = {n: s.single.submit(("ollama", n), s.ollama.read, n, self.deadline) for n in self.ollama_sources}
        if s.dashboard is not None:
            self.dashboard_future = s.single.submit("dashboard", s.read_dashboard, self.deadline)
        s.cluster.forget({c.name for c in s.coordinators}, set(self.workers), set(self.ollama_sources))
        # The worker probes run on this thread: queued behind slow HTTP targets in the pool they could miss the
        # deadline, and a worker that was never probed must not look like one that timed out.
        self._probe_workers()
        pending = [*self.coordinator_futures.values(), *self.ollama_futures.values()]
        if self.dashboard_future is not None:
            pending.append(self.dashboard_future)
        wait(pending, timeout=max(0.0, self.deadline - time.monotonic()))

    def _probe_workers(self) -> None:
        started = time.monotonic()
        cfg = self.scraper.config.rpc_backends
        handshakes = set()
        if cfg.handshake == "idle" or any(w.probe == "ggml" for w in self.workers.values()):
            # A handshake must never reach a worker that a live coordinator holds: learn the coordinators' state
            # first, giving them a third of the budget; a coordinator still unknown after that counts as holding.
            wait(list(self.coordinator_futures.values()), timeout=max(0.0, (self.deadline - time.monotonic()) / 3))
            handshakes = self._handshake_targets()
        by_probe: dict[str, list[Target]] = {"ggml": [w.target for w in self.workers.values() if w.target in handshakes]}
        for worker in self.workers.values():
            if worker.target not in handshakes:
                by_probe.setdefault("grpc" if worker.probe == "grpc" else "tcp", []).append(worker.target)
        limits = {"tcp": cfg.max_concurrency, "grpc": 32, "ggml": 16}
        record = self.rpc_results.__setitem__
        # ggml first: its results decide nothing else, but a worker is only ever probed one way per collection
        for kind in ("ggml", "grpc", "tcp"):
            targets = by_probe.get(kind)
            if targets:
                PROBERS[kind](targets, cfg.timeout, self.deadline, limit=limits[kind], report=record)
        self._record_handshakes(handshakes)
        self.rpc_duration = time.monotonic() - started

    def _handshake_targets(self) -> set[Target]:
        """Workers to probe with the ggml handshake: opted in (probe: ggml), or with handshake: idle every
        TCP-probed worker whose coordinators are all known to be down; none that is backing off."""
        s = self.scraper
        now = time.monotonic()
        chosen = set()
        with s.cluster.lock:
            backoff = dict(s.cluster.handshake_backoff)
        for address, worker in self.workers.items():
            if backoff.get(address, 0.0) > now:
                continue
            if worker.probe == "ggml":
                chosen.add(worker.target)
            elif worker.probe == "tcp" and s.config.rpc_backends.handshake == "idle":
                known = [_result(self.coordinator_futures[name]) if name in self.coordinator_futures else None for name in worker.coordinators]
                if all(r is not None and r.state not in coordinator_source.UP_STATES for r in known):
                    chosen.add(worker.target)
        return chosen

    def _record_handshakes(self, targets: set[Target]) -> None:
        cluster, backoff = self.scraper.cluster, self.scraper.config.rpc_backends.handshake_backoff
        with cluster.lock:
            for target in targets:
                result = self.rpc_results.get(target)
                if result is None:
                    continue
                if result.outcome == "busy":
                    cluster.handshake_backoff[target.address] = time.monotonic() + backoff
                if result.version or result.devices:
                    cluster.handshakes[target.address] = (result, self.now)

    def freeze(self, budget: float) -> Snapshot:
        s = self.scraper
        elapsed = time.monotonic() - self.started
        failures: dict[str, str] = {}
        invalid: Counter = Counter()
        dropped: Counter = Counter()
        durations: dict[str, float] = {}
        redis_result = _result(self.redis_future)
        if redis_result is None:
            redis = RedisStatus(False, _unfinished(self.redis_future), elapsed)
        else:
            redis = RedisStatus(redis_result.up, redis_result.error, redis_result.duration, redis_result.stream_length)
        durations["redis"] = redis.duration
        extra: dict[str, Any] = {}
        if not redis.up:
            for name in REDIS_COLLECTORS:
                failures[name] = f"redis unreachable: {redis.error}"
        else:
            extra = self._redis_parts(redis_result, failures, invalid, dropped)
        with s.cluster.lock:
            store = s.cluster.metadata
            metadata_readings = frozen(store.readings)
            fresh = tuple(store.fresh(self.now))
            routing = s.cluster.routing.view()
            handshakes = frozen(s.cluster.handshakes)
        events = s.cluster.events.view() if s.config.events.enabled else None
        if events is not None and not events.subscribed:
            failures["events"] = "not subscribed to SOLLOL's event channels (see the log)"
        coordinators = self._coordinators(elapsed, invalid)
        workers_now = self.workers
        if workers_now is None:
            workers_now, self_invalid = s.workers()
        else:
            self_invalid = self.invalid_workers
        invalid["rpc_backends"] += self_invalid
        backends = self._backends(workers_now, coordinators, elapsed)
        sources = self.ollama_sources if self.ollama_sources is not None else s.ollama_targets()
        ollama = {}
        for node in sources:
            reading = _result(self.ollama_futures.get(node)) or OllamaReading(False, elapsed, NOT_IN_TIME)
            invalid["ollama"] += reading.invalid_entries
            ollama[node] = reading
        dashboard = None
        if s.dashboard is not None:
            dashboard = _result(self.dashboard_future) or DashboardReading(False, elapsed, NOT_IN_TIME)
            invalid["applications"] += dashboard.invalid_entries
            dropped["applications"] += dashboard.dropped_entries
            durations["applications"] = dashboard.duration
            if not dashboard.up:
                failures["applications"] = f"dashboard: {dashboard.detail}"
        durations["coordinator"] = max((r.duration for r in coordinators.values()), default=0.0)
        durations["ollama"] = max((r.duration for r in ollama.values()), default=0.0)
        durations["rpc_backends"] = self.rpc_duration if self.rpc_duration is not None else elapsed
        return Snapshot(
            now=self.now, budget=budget, redis=redis, metadata_readings=metadata_readings, fresh_readings=fresh,
            routing=routing, coordinators=frozen(coordinators), backends=frozen(backends),
            handshakes=handshakes, ollama=frozen(ollama), ollama_sources=frozen({n: frozenset(v) for n, v in sources.items()}),
            dashboard=dashboard, events=events, failures=frozen(failures), durations=frozen(durations),
            invalid=frozen({k: v for k, v in invalid.items() if v}), dropped=frozen({k: v for k, v in dropped.items() if v}),
            **extra,
        )

    @staticmethod
    def _redis_parts(r: RedisResult, failures: dict, invalid: Counter, dropped: Counter) -> dict:
        current = r.metadata
        if current is not None and current.error:
            failures["metadata"] = f"sollol:router:metadata: {current.error}"
            invalid["metadata"] += 1
        elif current is not None and current.reading:
            invalid["metadata"] += current.reading.invalid_entries
        for name, parsed in (("gpu", r.gpu), ("rpc_nodes", r.registrations)):
            invalid[name] += parsed.invalid
            dropped[name] += parsed.dropped + (r.dropped or {}).get(name, 0)
            if parsed.errors:
                failures[name] = parsed.errors[0]
        invalid["routing"] += r.routing_invalid
        if r.routing_error:
            failures["routing"] = r.routing_error
        return {"metadata": current, "gpu": tuple(r.gpu.items), "registrations": tuple(r.registrations.items)}

    def _coordinators(self, elapsed: float, invalid: Counter) -> dict[str, coordinator_source.Reading]:
        readings = {}
        for client in self.scraper.coordinators:
            reading = _result(self.coordinator_futures.get(client.name))
            if reading is None:
                reading = coordinator_source.Reading(coordinator_source.HUNG, elapsed, NOT_IN_TIME)
            invalid["coordinator"] += reading.invalid_entries
            readings[client.name] = reading
        return readings

    def _backends(self, workers_now: dict[Address, Worker], coordinators: dict, elapsed: float) -> dict[Address, Backend]:
        up = {name for name, reading in coordinators.items() if reading.state in coordinator_source.UP_STATES}
        backends = {}
        for address, worker in sorted(workers_now.items()):
            result = self.rpc_results.get(worker.target) or ProbeResult(TIMEOUT, elapsed, NOT_IN_TIME)
            state = classify(result, worker.probe, bool(worker.coordinators & up))
            backends[address] = Backend(worker.target, worker.probe, frozenset(worker.sources), frozenset(worker.coordinators), result, state)
        return backends


def _unfinished(future: Future | None) -> str:
    """Why a task has no result: still running (not in time), or it raised (a bug, logged once here)."""
    if future is not None and future.done() and not future.cancelled() and future.exception() is not None:
        err = future.exception()
        log.error("task failed", exc_info=(type(err), err, err.__traceback__))
        return f"internal error: {type(err).__name__}"
    return NOT_IN_TIME


def _result(future: Future | None) -> Any:
    if future is not None and future.done() and not future.cancelled() and future.exception() is None:
        return future.result()
    return None
