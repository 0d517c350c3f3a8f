"""The pool shared by the gRPC and ggml probers, driven by plain functions standing in for a probe."""

from __future__ import annotations

import threading
import time

import pytest

from sollol_exporter.addresses import Address
from sollol_exporter.probes import ERROR, OK, TIMEOUT, ProbeResult, Target, blocking


def targets(count: int) -> list[Target]:
    return [Target(Address("10.0.0.1", 50052 + n)) for n in range(count)]


def answered(target: Target, budget: float) -> ProbeResult:
    return ProbeResult(OK, 0.0, f"{target.address.port} within {budget:.0f}")


def test_each_result_is_reported_as_it_comes_in():
    first, second = targets(2)
    first_reported = threading.Event()
    reported = []

    def probe(target: Target, budget: float) -> ProbeResult:
        if target == second:  # answers only once the first one's result has been reported
            assert first_reported.wait(5)
        return answered(target, budget)

    def report(target: Target, result: ProbeResult) -> None:
        reported.append((target, result))
        if target == first:
            first_reported.set()

    results = blocking.probe_each([first, second], probe, 3, time.monotonic() + 10, limit=2, thread_name="test", report=report)
    assert reported == [(first, answered(first, 3)), (second, answered(second, 3))]
    assert results == dict(reported)


def test_the_budget_is_the_timeout_or_what_is_left_until_the_deadline():
    target = targets(1)[0]
    budgets = []

    def probe(target: Target, budget: float) -> ProbeResult:
        budgets.append(budget)
        return answered(target, budget)

    blocking.probe_each([target], probe, 2, time.monotonic() + 30, limit=1, thread_name="test")
    blocking.probe_each([target], probe, 30, time.monotonic() + 2, limit=1, thread_name="test")
    assert budgets[0] == 2
    assert 1.5 < budgets[1] <= 2


def test_a_target_named_twice_is_probed_once():
    target = targets(1)[0]
    calls = []

    def probe(target: Target, budget: float) -> ProbeResult:
        calls.append(target)
        return answered(target, budget)

    assert blocking.probe_each([target, target], probe, 1, time.monotonic() + 5, limit=4, thread_name="test") == {target: answered(target, 1)}
    assert calls == [target]
    assert blocking.probe_each([], probe, 1, time.monotonic() + 5, limit=4, thread_name="test") == {}


def test_what_is_unfinished_at_the_deadline_is_a_timeout_and_what_has_not_started_never_starts():
    quick, hung, queued = targets(3)
    release = threading.Event()
    started = []
    reported = []

    def probe(target: Target, budget: float) -> ProbeResult:
        started.append(target)
        if target == hung:
            release.wait(10)
        return answered(target, budget)

    try:
        began = time.monotonic()
        # one thread: quick answers, hung holds the thread past the deadline, queued is never reached
        results = blocking.probe_each([quick, hung, queued], probe, 5, began + 0.5, limit=1, thread_name="test",
                                      report=lambda target, result: reported.append(target))
        waited = time.monotonic() - began
    finally:
        release.set()
    assert 0.5 <= waited < 0.5 + blocking.GRACE + 0.5
    assert results[quick] == answered(quick, results[hung].duration)
    assert results[hung].outcome == TIMEOUT and results[hung].detail == blocking.DEADLINE_REACHED
    assert results[queued] == ProbeResult(TIMEOUT, 0.0, blocking.NOT_STARTED)
    time.sleep(0.2)  # hung has been released: the pool would start queued now if it had not been cancelled
    assert started == [quick, hung]
    assert reported[0] == quick and queued not in reported


def test_no_more_probes_run_at_once_than_the_limit():
    limit = 3
    running = peak = 0
    lock = threading.Lock()
    together = threading.Barrier(limit, timeout=5)  # passes only when `limit` probes run at once

    def probe(target: Target, budget: float) -> ProbeResult:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        together.wait()
        time.sleep(0.05)
        with lock:
            running -= 1
        return answered(target, budget)

    results = blocking.probe_each(targets(2 * limit), probe, 10, time.monotonic() + 10, limit=limit, thread_name="test")
    assert [r.outcome for r in results.values()] == [OK] * (2 * limit)
    assert peak == limit


def test_a_probe_that_raises_is_an_error_not_a_timeout_reported_and_logged(caplog):
    target = targets(1)[0]
    reported = {}

    def probe(target: Target, budget: float) -> ProbeResult:
        raise ValueError("broken on purpose")

    result = blocking.probe_each([target], probe, 1, time.monotonic() + 5, limit=1, thread_name="test", report=reported.__setitem__)[target]
    assert (result.outcome, result.detail) == (ERROR, "internal error: ValueError")
    assert reported == {target: result}
    assert [r.getMessage() for r in caplog.records if r.name == "sollol_exporter.probes.blocking"] == ["probe failed"]


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_still_probes(limit):
    target = targets(1)[0]
    assert blocking.probe_each([target], answered, 1, time.monotonic() + 5, limit=limit, thread_name="test") == {target: answered(target, 1)}


def test_a_probe_still_queued_when_the_deadline_passes_does_not_start():
    """One thread, two targets: the first holds it until just after the deadline; the second, taken off the queue
    then, before the pool is shut down (GRACE later), must not start: it would hold a worker for nobody."""
    first, second = targets(2)
    started = []

    def probe(target: Target, budget: float) -> ProbeResult:
        started.append(target)
        if target == first:
            time.sleep(0.35)
        return answered(target, budget)

    results = blocking.probe_each([first, second], probe, 5, time.monotonic() + 0.3, limit=1, thread_name="test")
    time.sleep(0.3)  # the pool's thread has taken the second target off the queue by now
    assert started == [first]
    assert results[second].outcome == TIMEOUT
