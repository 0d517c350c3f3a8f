"""One collection: every source read once, frozen at any moment into an immutable Snapshot.

`run` fills it in on the collecting thread; `freeze` may be called from any scrape at any time and renders what is
known by then, anything unfinished reported as not answered in time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any

from sollol_exporter import metadata as metadata_model
from sollol_exporter import presence
from sollol_exporter.labels import Address
from sollol_exporter.probes import BUSY, TIMEOUT, ProbeResult, Target
from sollol_exporter.probes.dispatch import PROBERS
from sollol_exporter.snapshot import NOT_IN_TIME, Backend, RedisStatus, Snapshot, frozen
from sollol_exporter.sources import coordinator as coordinator_source
from sollol_exporter.sources import redis_values
from sollol_exporter.sources.dashboard import Reading as DashboardReading
from sollol_exporter.sources.ollama import Reading as OllamaReading
from sollol_exporter.workers import Worker, classify

log = logging.getLogger(__name__)
REDIS_COLLECTORS = ("redis", "metadata", "gpu", "rpc_nodes", "routing")
# Redis is read for these collectors, and for the targets it names: with all of them off it is not read at all.
NEEDS_REDIS = frozenset({*REDIS_COLLECTORS, "ollama", "rpc_backends"})


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


class Collection:
    """One pass over every source. `run` fills it in on the collecting thread; `freeze` may be called from any
    scrape at any time and renders what is known by then."""

    def __init__(self, scraper, deadline: float, budget: float):
        """`scraper`: the Scraper whose clients, tasks and cluster state this collection uses."""
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
        if not NEEDS_REDIS <= s.config.disabled_collectors:
            self.redis_future = s.single.submit("redis", s.read_redis, self.redis_deadline)
            wait([self.redis_future], timeout=max(0.0, self.redis_deadline - time.monotonic()))
        self.workers, self.invalid_workers = s.workers()
        self.ollama_sources = s.ollama_targets()
        disabled = s.config.disabled_collectors
        if not {"coordinator", "rpc_backends"} <= disabled:  # a worker's state needs its coordinator's
            health_only = "coordinator" in disabled
            self.coordinator_futures = {c.name: s.single.submit(("coordinator", c.name, health_only), s.read_coordinator, c, self.deadline, health_only)
                                        for c in s.coordinators}
        if "ollama" not in disabled:
            self.ollama_futures = {n: s.single.submit(("ollama", n), s.ollama.read, n, self.deadline) for n in self.ollama_sources}
        if s.dashboard is not None and "applications" not in disabled:
            self.dashboard_future = s.single.submit("dashboard", s.read_dashboard, self.deadline)
        s.cluster.forget({c.name for c in s.coordinators}, set(self.workers), set(self.ollama_sources))
        s.cluster.presence.forget(presence.REDIS, {presence.where(s.config.redis.url)})
        s.cluster.presence.forget(presence.DASHBOARD, {presence.where(s.config.dashboard.url)})
        # The worker probes run on this thread: queued behind slow HTTP targets in the pool they could miss the
        # deadline, and a worker that was never probed must not look like one that timed out.
        if "rpc_backends" not in disabled:
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
                if result.outcome == BUSY:
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
        declared, known = s.config.declared, s.cluster.presence
        redis_part = (presence.REDIS, presence.where(s.config.redis.url))
        expected = {redis_part: known.expected(*redis_part, declared)}
        extra: dict[str, Any] = {}
        if not redis.up:
            if expected[redis_part]:  # else absent, not down (presence.py)
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
        if (events is not None and not events.subscribed and not s.cluster.subscriber_connecting()
                and expected[redis_part]):
            failures["events"] = "not subscribed to SOLLOL's event channels (see the log)"
        coordinators = self._coordinators(elapsed, invalid)
        for name in coordinators:
            expected[presence.COORDINATOR, name] = known.expected(presence.COORDINATOR, name, declared)
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
            reading = _result(self.ollama_futures.get(node)) or OllamaReading(False, elapsed, _unfinished(self.ollama_futures.get(node)))
            invalid["ollama"] += reading.invalid_entries
            ollama[node] = reading
        dashboard = None
        if s.dashboard is not None and "applications" not in s.config.disabled_collectors:
            dashboard = _result(self.dashboard_future) or DashboardReading(False, elapsed, _unfinished(self.dashboard_future))
            invalid["applications"] += dashboard.invalid_entries
            dropped["applications"] += dashboard.dropped_entries
            durations["applications"] = dashboard.duration
            dashboard_part = (presence.DASHBOARD, presence.where(s.config.dashboard.url))
            expected[dashboard_part] = known.expected(*dashboard_part, declared)
            if not dashboard.up and expected[dashboard_part]:
                failures["applications"] = f"dashboard: {dashboard.detail}"
        durations["coordinator"] = max((r.duration for r in coordinators.values()), default=0.0)
        durations["ollama"] = max((r.duration for r in ollama.values()), default=0.0)
        durations["rpc_backends"] = self.rpc_duration if self.rpc_duration is not None else elapsed
        return Snapshot(
            now=self.now, budget=budget, redis=redis, metadata_readings=metadata_readings, fresh_readings=fresh,
            routing=routing, coordinators=frozen(coordinators), backends=frozen(backends),
            handshakes=handshakes, ollama=frozen(ollama), ollama_sources=frozen({n: frozenset(v) for n, v in sources.items()}),
            dashboard=dashboard, events=events, expected=frozen(expected),
            failures=frozen({k: v for k, v in failures.items() if k not in s.config.disabled_collectors}), durations=frozen(durations),
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
        if {"coordinator", "rpc_backends"} <= self.scraper.config.disabled_collectors:
            return readings
        for client in self.scraper.coordinators:
            future = self.coordinator_futures.get(client.name)
            reading = _result(future)
            if reading is None:
                why = _unfinished(future)
                state = coordinator_source.HUNG if why == NOT_IN_TIME else coordinator_source.ERROR  # a bug is not slowness
                reading = coordinator_source.Reading(state, elapsed, why)
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
    """Why a task has no result: still running (not in time), or it raised (a bug: the failure log says so once per
    target; the traceback goes to the debug log)."""
    if future is not None and future.done() and not future.cancelled() and future.exception() is not None:
        err = future.exception()
        log.debug("task failed", exc_info=(type(err), err, err.__traceback__))
        return f"internal error: {type(err).__name__}"
    return NOT_IN_TIME


def _result(future: Future | None) -> Any:
    if future is not None and future.done() and not future.cancelled() and future.exception() is None:
        return future.result()
    return None
