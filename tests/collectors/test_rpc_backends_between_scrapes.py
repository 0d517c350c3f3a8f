"""The rpc_backends collector keeps a worker's unchanged series from one scrape to the next: whatever changes
between scrapes (state, sources, probe, the coordinators it serves, the probe time) must still show at once."""

from __future__ import annotations

from sollol_exporter.addresses import Address
from sollol_exporter.collectors.rpc_backends import RpcBackendsCollector
from sollol_exporter.presence import COORDINATOR
from sollol_exporter.probes import OK, REFUSED, ProbeResult, Target
from sollol_exporter.snapshot import Backend, RedisStatus, Snapshot, frozen
from tests.support.collect import rendered
from tests.support.exporter import one_hot, series, value

WORKER, OTHER = Address("10.0.0.7", 50052), Address("10.0.0.8", 50052)
TARGET = Target(WORKER)  # the same target object every scrape, as the exporter's own worker set hands it out


def snapshot(state: str, outcome: str, duration: float, sources=("metadata",), probe="tcp", main_expected=True, others=()) -> Snapshot:
    backends = {WORKER: Backend(TARGET, probe, frozenset(sources), frozenset({"main"}), ProbeResult(outcome, duration), state)}
    for address in others:
        backends[address] = Backend(Target(address), "tcp", frozenset({"config"}), frozenset(), ProbeResult(OK, 0.001), "reachable")
    return Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True), backends=frozen(backends),
                    expected=frozen({(COORDINATOR, "main"): main_expected}))


def test_every_change_shows_in_the_next_scrape():
    collector = RpcBackendsCollector()
    backend = str(WORKER)
    first = rendered(collector, snapshot("reachable", OK, 0.002, others=[OTHER]))
    assert one_hot(first, "sollol_rpc_backend_state", backend=backend) == "reachable"
    assert value(first, "sollol_rpc_backend_up", backend=backend) == 1.0
    assert series(first, "sollol_rpc_backend_coordinator_info") == {(("backend", backend), ("coordinator", "main")): 1.0}
    assert value(first, "sollol_rpc_backend_up", backend=str(OTHER)) == 1.0

    second = rendered(collector, snapshot("refused", REFUSED, 0.0005, sources=("metadata", "registry"), probe="ggml", main_expected=False))
    assert one_hot(second, "sollol_rpc_backend_state", backend=backend) == "refused"
    assert value(second, "sollol_rpc_backend_up", backend=backend) == 0.0
    assert value(second, "sollol_rpc_backend_probe_duration_seconds", backend=backend) == 0.0005
    assert series(second, "sollol_rpc_backend_info") == {(("backend", backend), ("probe", "ggml"), ("source", "metadata,registry")): 1.0}
    assert series(second, "sollol_rpc_backend_coordinator_info") == {}  # main is absent now: serves nobody
    assert value(second, "sollol_rpc_backend_up", backend=str(OTHER)) is None  # gone: not rendered

    third = rendered(collector, snapshot("reachable", OK, 0.003))
    assert one_hot(third, "sollol_rpc_backend_state", backend=backend) == "reachable"
    assert value(third, "sollol_rpc_backend_probe_duration_seconds", backend=backend) == 0.003
    assert series(third, "sollol_rpc_backend_info") == {(("backend", backend), ("probe", "tcp"), ("source", "metadata")): 1.0}
    assert series(third, "sollol_rpc_backend_coordinator_info") == {(("backend", backend), ("coordinator", "main")): 1.0}


def test_an_unchanged_scrape_renders_the_same_series():
    collector = RpcBackendsCollector()
    assert rendered(collector, snapshot("reachable", OK, 0.002)) == rendered(collector, snapshot("reachable", OK, 0.002))
