"""One collection: every source read once for one scrape, frozen into an immutable Snapshot.

A collection uses the Sources it is given (sources/bundle.py) and the cluster state, never the scraper that made
it. Every scrape has its own collection; what they share is each source's read in flight (one request per target
at a time), never a reading that finished before the scrape started. Sources that do not depend on Redis
(coordinators, the dashboard, the nodes and workers named in the config or by Redis the last time) start at once;
Redis gets at most half the budget, and what it newly names is read after it answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future, wait
from typing import Any

from sollol_exporter import presence
from sollol_exporter.addresses import Address
from sollol_exporter.collectors.names import NEED_REDIS_READ, RENDER_REDIS_READ, CollectorName
from sollol_exporter.logs import debug_traceback
from sollol_exporter.peers import METADATA_KEY
from sollol_exporter.probes import TIMEOUT, ProbeKind, ProbeResult, Target, ggml_rpc, grpc_health
from sollol_exporter.probes.dispatch import PROBERS
from sollol_exporter.snapshot import NOT_IN_TIME, Backend, RedisStatus, Snapshot, frozen
from sollol_exporter.sources import coordinator as coordinator_source
from sollol_exporter.sources.bundle import COORDINATORS, DASHBOARD, OLLAMA, REDIS, WORKERS, RedisResult, Sources, payload_of
from sollol_exporter.sources.dashboard import Reading as DashboardReading
from sollol_exporter.sources.ollama import Reading as OllamaReading
from sollol_exporter.workers import Worker, address_order, classify

log = logging.getLogger(__name__)
COORDINATOR, RPC_BACKENDS = CollectorName.COORDINATOR, CollectorName.RPC_BACKENDS


class WorkerPass:
    """One probe of every worker, shared by the collections that arrive while it runs (a worker is probed by one
    of them at a time). Results come in as they are known, so a scrape that cannot wait gets those already in."""

    def __init__(self, sources: Sources, workers: dict[Address, Worker], coordinator_futures: dict[str, Future], deadline: float):
        self.sources = sources
        self.workers = workers
        self.coordinator_futures = coordinator_futures
        self.deadline = deadline
        self.results: dict[Target, ProbeResult] = {}
        self.duration: float | None = None

    def run(self) -> None:
        started = time.monotonic()
        cfg = self.sources.config.rpc_backends
        handshakes: set[Target] = set()
        if cfg.handshake == "idle" or any(w.probe == ProbeKind.GGML for w in self.workers.values()):
            # With handshake: idle, a handshake goes only to workers whose coordinators are all known to be down:
            # learn their state first, giving them a third of the budget (one still unknown counts as holding its
            # workers). A worker opted in with probe: ggml is handshaken whatever its coordinator does; one that
            # does not answer is backed off (handshake_backoff) to connect-and-close.
            wait(list(self.coordinator_futures.values()), timeout=max(0.0, (self.deadline - time.monotonic()) / 3))
            handshakes = self._handshake_targets()
        by_probe: dict[ProbeKind, list[Target]] = {kind: [] for kind in ProbeKind}
        for worker in self.workers.values():
            if handshakes and worker.target in handshakes:
                by_probe[ProbeKind.GGML].append(worker.target)
            else:
                by_probe[ProbeKind.GRPC if worker.probe == ProbeKind.GRPC else ProbeKind.TCP].append(worker.target)
        limits = {ProbeKind.TCP: cfg.max_concurrency, ProbeKind.GRPC: grpc_health.MAX_THREADS, ProbeKind.GGML: ggml_rpc.MAX_THREADS}

        def probe(kind: ProbeKind) -> None:
            final = PROBERS[kind](by_probe[kind], cfg.timeout, self.deadline, limit=limits[kind], report=self.results.__setitem__)
            for target, result in final.items():  # what was not reported: not started, or not finished, in time
                self.results.setdefault(target, result)

        # Each kind may use the whole budget: the blocking kinds run beside the TCP pass (on this thread), so that
        # slow handshakes or health checks never leave the connect probes without time.
        beside = [threading.Thread(target=probe, args=(kind,), name=f"workers-{kind}", daemon=True)
                  for kind in ProbeKind if kind != ProbeKind.TCP and by_probe[kind]]
        for thread in beside:
            thread.start()
        if by_probe[ProbeKind.TCP]:
            probe(ProbeKind.TCP)
        for thread in beside:  # each returns a moment after the deadline (probes.blocking.GRACE)
            thread.join(max(0.0, self.deadline - time.monotonic()) + 1.0)
        self.sources.cluster.record_handshakes({t: self.results[t] for t in handshakes if t in self.results}, time.time(),
                                               cfg.handshake_backoff)
        self.duration = time.monotonic() - started

    def _handshake_targets(self) -> set[Target]:
        """Workers to probe with the ggml handshake: opted in (probe: ggml), or with handshake: idle every
        TCP-probed worker whose coordinators are all known to be down; none that is backing off."""
        cluster, config = self.sources.cluster, self.sources.config
        now = time.monotonic()
        chosen = set()
        with cluster.lock:
            backoff = dict(cluster.handshake_backoff)
        for address, worker in self.workers.items():
            if backoff.get(address, 0.0) > now:
                continue
            if worker.probe == ProbeKind.GGML:
                chosen.add(worker.target)
            elif worker.probe == ProbeKind.TCP and config.rpc_backends.handshake == "idle":
                known = [_result(self.coordinator_futures[name]) if name in self.coordinator_futures else None for name in worker.coordinators]
                if all(r is not None and r.state not in coordinator_source.COORDINATOR_UP_STATES for r in known):
                    chosen.add(worker.target)
        return chosen


class Collection:
    """One pass over every source for one scrape: `run` reads until the deadline, then `freeze` renders what is
    known, anything unfinished reported as not answered in time."""

    def __init__(self, sources: Sources, deadline: float, budget: float):
        self.sources = sources
        self.config = sources.config
        self.cluster = sources.cluster
        self.deadline = deadline
        self.started = time.monotonic()
        self.now = time.time()
        self.redis_future: Future | None = None
        self.workers: dict[Address, Worker] | None = None
        self.invalid_workers = 0
        self.ollama_sources: dict[Address, set[str]] | None = None
        self.coordinator_futures: dict[str, Future] = {}
        self.ollama_futures: dict[Address, Future] = {}
        self.dashboard_future: Future | None = None
        self.worker_pass: WorkerPass | None = None
        self.worker_future: Future | None = None
        self.redis_deadline = min(deadline, self.started + budget / 2)

    def run(self) -> None:
        try:
            self._run()
        except Exception:  # a bug here must not cost the scrape: it renders what is known
            log.error("collection failed", exc_info=debug_traceback(log))

    def _run(self) -> None:
        src, disabled = self.sources, self.config.disabled_collectors
        if not disabled >= NEED_REDIS_READ:
            self.redis_future = src.submit(REDIS, REDIS, src.read_redis, self.redis_deadline, deadline=self.redis_deadline)
        if not {COORDINATOR, RPC_BACKENDS} <= disabled:  # a worker's state needs its coordinator's
            health_only = COORDINATOR in disabled
            self.coordinator_futures = {c.name: src.submit(COORDINATORS, (c.name, health_only), src.read_coordinator, c, self.deadline, health_only,
                                                  deadline=self.deadline)
                                        for c in src.coordinators}
        if src.dashboard is not None:
            self.dashboard_future = src.submit(DASHBOARD, DASHBOARD, src.read_dashboard, self.deadline, deadline=self.deadline)
        self._read_nodes()  # the config's, and those Redis named the last time
        if self.redis_future is not None:
            wait([self.redis_future], timeout=max(0.0, self.redis_deadline - time.monotonic()))
        self._read_nodes()  # and those it names now
        self.workers, self.invalid_workers = src.workers()
        self.cluster.forget({c.name for c in src.coordinators}, set(self.workers), set(self.ollama_sources or ()))
        self.cluster.presence.forget(presence.REDIS, {presence.where(self.config.redis.url)})
        self.cluster.presence.forget(presence.DASHBOARD, {presence.where(self.config.dashboard.url)})
        if RPC_BACKENDS not in disabled:
            self.worker_pass, self.worker_future = self._join_worker_pass()
        pending = [*self.coordinator_futures.values(), *self.ollama_futures.values()]
        pending += [f for f in (self.dashboard_future, self.worker_future) if f is not None]
        wait(pending, timeout=max(0.0, self.deadline - time.monotonic()))

    def _read_nodes(self) -> None:
        src = self.sources
        self.ollama_sources = src.ollama_targets()
        if CollectorName.OLLAMA in self.config.disabled_collectors:
            return
        for node in self.ollama_sources:
            if node not in self.ollama_futures:
                self.ollama_futures[node] = src.submit(OLLAMA, node, src.read_ollama, node, self.deadline, deadline=self.deadline)

    def _join_worker_pass(self) -> tuple[WorkerPass, Future]:
        """The pass running for these sources, or a new one over the workers known now."""
        src = self.sources
        created = WorkerPass(src, self.workers or {}, self.coordinator_futures, self.deadline)
        future = src.submit(WORKERS, WORKERS, created.run, deadline=self.deadline, payload=created)
        return payload_of(future), future

    def freeze(self, budget: float) -> Snapshot:
        s = self.sources
        elapsed = time.monotonic() - self.started
        failures: dict[CollectorName, str] = {}
        invalid: Counter = Counter()
        dropped: Counter = Counter()
        durations: dict[CollectorName, float] = {}
        redis_result = _result(self.redis_future)
        redis = redis_result.status if redis_result is not None else RedisStatus(False, _unfinished(self.redis_future), elapsed)
        durations[CollectorName.REDIS] = redis.duration
        declared, known = s.config.declared, s.cluster.presence
        redis_part = (presence.REDIS, presence.where(s.config.redis.url))
        expected = {redis_part: known.expected(*redis_part, declared)}
        extra: dict[str, Any] = {}
        if not redis.up:
            if expected[redis_part]:  # else absent, not down (presence.py)
                for collector in CollectorName:
                    if collector in RENDER_REDIS_READ:
                        failures[collector] = f"redis unreachable: {redis.error}"
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
            failures[CollectorName.EVENTS] = "not subscribed to SOLLOL's event channels (see the log)"
        coordinators = self._coordinators(elapsed, invalid, dropped)
        for name in coordinators:
            expected[presence.COORDINATOR, name] = known.expected(presence.COORDINATOR, name, declared)
        workers_now = self.workers
        if workers_now is None:
            workers_now, self_invalid = s.workers()
        else:
            self_invalid = self.invalid_workers
        invalid[RPC_BACKENDS] += self_invalid
        backends = self._backends(workers_now, coordinators, elapsed)
        sources = self.ollama_sources if self.ollama_sources is not None else s.ollama_targets()
        ollama = {}
        for node in sources:
            reading = _result(self.ollama_futures.get(node)) or OllamaReading(False, elapsed, _unfinished(self.ollama_futures.get(node)))
            invalid[CollectorName.OLLAMA] += reading.invalid_entries
            ollama[node] = reading
        dashboard = None
        if s.dashboard is not None and CollectorName.APPLICATIONS not in s.config.disabled_collectors:
            dashboard = _result(self.dashboard_future) or DashboardReading(False, elapsed, _unfinished(self.dashboard_future))
            invalid[CollectorName.APPLICATIONS] += dashboard.invalid_entries
            dropped[CollectorName.APPLICATIONS] += dashboard.dropped_entries
            durations[CollectorName.APPLICATIONS] = dashboard.duration
            dashboard_part = (presence.DASHBOARD, presence.where(s.config.dashboard.url))
            expected[dashboard_part] = known.expected(*dashboard_part, declared)
            if not dashboard.up and expected[dashboard_part]:
                failures[CollectorName.APPLICATIONS] = f"dashboard: {dashboard.detail}"
        durations[COORDINATOR] = max((r.duration for r in coordinators.values()), default=0.0)
        durations[CollectorName.OLLAMA] = max((r.duration for r in ollama.values()), default=0.0)
        pass_duration = self.worker_pass.duration if self.worker_pass is not None else None
        durations[RPC_BACKENDS] = pass_duration if pass_duration is not None else elapsed
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
            failures[CollectorName.METADATA] = f"{METADATA_KEY}: {current.error}"
            invalid[CollectorName.METADATA] += 1
        elif current is not None and current.reading:
            invalid[CollectorName.METADATA] += current.reading.invalid_entries
            dropped[CollectorName.METADATA] += current.reading.dropped_entries
        gpu, registrations, section_errors = r.gpu, r.registrations, r.section_errors or {}
        assert gpu is not None and registrations is not None  # a read that reached Redis parsed both
        # the read's dropped keys and section errors are under the same names as these collectors
        for name, parsed in ((CollectorName.GPU, gpu), (CollectorName.RPC_NODES, registrations)):
            invalid[name] += parsed.invalid
            dropped[name] += parsed.dropped + (r.dropped or {}).get(name, 0)
            if parsed.errors:
                failures[name] = parsed.errors[0]
            if name in section_errors:
                failures[name] = f"keys not listed: {section_errors[name]}"
        invalid[CollectorName.ROUTING] += r.routing_invalid
        if r.routing_error:
            failures[CollectorName.ROUTING] = r.routing_error
        return {"metadata": current, "gpu": tuple(gpu.items), "registrations": tuple(registrations.items)}

    def _coordinators(self, elapsed: float, invalid: Counter, dropped: Counter) -> dict[str, coordinator_source.Reading]:
        readings: dict[str, coordinator_source.Reading] = {}
        if {COORDINATOR, RPC_BACKENDS} <= self.config.disabled_collectors:
            return readings
        for client in self.sources.coordinators:
            future = self.coordinator_futures.get(client.name)
            reading = _result(future)
            if reading is None:
                why = _unfinished(future)
                # still running: stalled once /health has answered, else hung; a bug is not slowness
                reading = client.unfinished(elapsed) if why == NOT_IN_TIME else coordinator_source.Reading(coordinator_source.ERROR, elapsed, why)
            invalid[COORDINATOR] += reading.invalid_entries
            dropped[COORDINATOR] += reading.dropped_entries
            readings[client.name] = reading
        return readings

    def _backends(self, workers_now: dict[Address, Worker], coordinators: dict, elapsed: float) -> dict[Address, Backend]:
        up = {name for name, reading in coordinators.items() if reading.state in coordinator_source.COORDINATOR_UP_STATES}
        results = dict(self.worker_pass.results) if self.worker_pass is not None else {}
        not_in_time = ProbeResult(TIMEOUT, elapsed, NOT_IN_TIME)
        backends = {}
        for address, worker in sorted(workers_now.items(), key=address_order):  # already in order: a cheap pass
            result = results.get(worker.target) or not_in_time
            state = classify(result, worker.probe, not worker.coordinators.isdisjoint(up))
            backends[address] = Backend(worker.target, worker.probe, worker.sources, worker.coordinators, result, state)
        return backends


def _unfinished(future: Future | None) -> str:
    """Why a task has no result: still running (not in time), or it raised (a bug: the failure log says so once per
    target; the traceback goes to the debug log)."""
    err = future.exception() if future is not None and future.done() and not future.cancelled() else None
    if err is not None:
        log.debug("task failed", exc_info=(type(err), err, err.__traceback__))
        return f"internal error: {type(err).__name__}"
    return NOT_IN_TIME


def _result(future: Future | None) -> Any:
    if future is not None and future.done() and not future.cancelled() and future.exception() is None:
        return future.result()
    return None
