"""The pool of the probers that hold a thread for each target while it answers (the gRPC health check, the ggml
handshake); the TCP prober needs none (probes/tcp.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from sollol_exporter.logs import debug_traceback, fields
from sollol_exporter.probes import ERROR, TIMEOUT, ProbeResult, Target

log = logging.getLogger(__name__)

# A probe bounded by the deadline itself returns a moment after it: its result is waited for that much longer.
GRACE = 0.1
DEADLINE_REACHED = "scrape deadline reached"
NOT_STARTED = "scrape deadline reached before the probe"


def probe_each(
    targets: Iterable[Target], probe: Callable[[Target, float], ProbeResult], timeout: float, deadline: float, *,
    limit: int, thread_name: str, report: Callable[[Target, ProbeResult], None] | None = None,
) -> dict[Target, ProbeResult]:
    """`probe(target, budget)` once for each target, at most `limit` at a time on threads made for this call;
    `budget` is `timeout`, or what is left until `deadline` if that is less. `report(target, result)` is called as
    each result comes in. A probe still running at the deadline is a timeout; one not started by then never starts."""
    targets = list(dict.fromkeys(targets))
    if not targets:
        return {}
    budget = max(0.0, min(timeout, deadline - time.monotonic()))
    pool = ThreadPoolExecutor(max_workers=max(1, min(limit, len(targets))), thread_name_prefix=thread_name)

    def run(target: Target) -> ProbeResult:
        if time.monotonic() >= deadline:  # queued until after the deadline: it would answer nobody
            return ProbeResult(TIMEOUT, 0.0, NOT_STARTED)
        started = time.monotonic()
        try:
            result = probe(target, budget)
        except Exception as err:  # a bug in the prober, not the target's doing: reported as such
            log.error("probe failed", exc_info=debug_traceback(log), extra=fields(target=str(target.address), error=type(err).__name__))
            result = ProbeResult(ERROR, time.monotonic() - started, f"internal error: {type(err).__name__}")
        if report:
            report(target, result)
        return result

    futures = {pool.submit(run, target): target for target in targets}
    wait(futures, timeout=max(0.0, deadline - time.monotonic()) + GRACE)
    pool.shutdown(wait=False, cancel_futures=True)
    return {target: _result(future, budget) for future, target in futures.items()}


def _result(future: Future, budget: float) -> ProbeResult:
    if future.cancelled():
        return ProbeResult(TIMEOUT, 0.0, NOT_STARTED)
    if not future.done():
        return ProbeResult(TIMEOUT, budget, DEADLINE_REACHED)
    err = future.exception()
    if err is not None:  # a bug in the prober, not the target's doing
        return ProbeResult(ERROR, budget, f"internal error: {type(err).__name__}")
    return future.result()
