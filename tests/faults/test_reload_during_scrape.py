"""A reload never lies: scrapes running while the config is reloaded (SIGHUP, POST /-/reload, a storm of them)
report the healthy cluster as healthy, reloads run one after another, and SIGTERM ends the process in seconds
even while reads hang."""

from __future__ import annotations

import signal
import socket
import threading
import time

import requests

from tests.support.collect import base_config
from tests.support.exporter import parse, value
from tests.support.replay import ReplayServer, Route, dashboard_routes, ollama_routes

SLOW = 0.8  # every peer answers, slowly: a reload lands while the scrape reads them


def slow_cluster():
    coordinator = ReplayServer({"/health": Route({"status": "ok"}, delay=SLOW), "/metrics": Route("", status=501),
                                "/props": Route({"total_slots": 1})})
    node = ReplayServer(ollama_routes())
    node.routes["/"].delay = SLOW
    dashboard = ReplayServer(dashboard_routes())
    dashboard.routes["/api/applications"].delay = SLOW
    return coordinator, node, dashboard


def all_healthy(samples) -> dict:
    return {
        "redis": value(samples, "sollol_redis_up"),
        "coordinator": value(samples, "sollol_coordinator_up", coordinator="main"),
        "node": value(samples, "sollol_ollama_node_up", node=NODE[0]),
        "dashboard": value(samples, "sollol_dashboard_up"),
    }


NODE: list[str] = []


def test_a_scrape_running_during_reloads_reports_what_it_read(start_exporter, redis_db):
    coordinator, node, dashboard = slow_cluster()
    NODE[:] = [node.address]
    try:
        config = base_config(redis_db.url, coordinators=[{"url": coordinator.url, "name": "main"}], ollama={"discover": False, "nodes": [node.address]},
                             dashboard={"enabled": True, "url": dashboard.url})
        exporter = start_exporter(config, extra_args=("--web.enable-lifecycle",))
        for how in ("sighup", "post", "sighup"):
            result = {}
            scrape = threading.Thread(target=lambda result=result: result.update(reply=exporter.scrape_text(timeout=5)))
            scrape.start()
            time.sleep(SLOW / 3)
            if how == "sighup":
                exporter.reload()
            else:
                assert requests.post(exporter.url + "/-/reload", timeout=10).status_code == 200
            scrape.join(15)
            assert result["reply"].status_code == 200
            assert all_healthy(parse(result["reply"].text)) == {"redis": 1, "coordinator": 1, "node": 1, "dashboard": 1}, how

        # a storm: a SIGHUP every 50 ms while scrapes run one after another
        stop = threading.Event()

        def storm():
            while not stop.is_set():
                exporter.reload()
                time.sleep(0.05)

        hup = threading.Thread(target=storm)
        hup.start()
        try:
            seen = [all_healthy(exporter.scrape(timeout=5)) for _ in range(6)]
        finally:
            stop.set()
            hup.join()
        assert all(s == {"redis": 1, "coordinator": 1, "node": 1, "dashboard": 1} for s in seen), seen
        assert "Traceback" not in exporter.read_log() and "cannot schedule" not in exporter.read_log()
    finally:
        for server in (coordinator, node, dashboard):
            server.stop()


def test_post_reload_waits_for_a_reload_that_starts_after_it(start_exporter, redis_db, tmp_path):
    exporter = start_exporter(base_config(redis_db.url), extra_args=("--web.enable-lifecycle",))
    exporter.write_config({"redis": {"url": redis_db.url, "timeout": "not a duration"}})
    assert requests.post(exporter.url + "/-/reload", timeout=10).status_code == 500
    exporter.write_config(base_config(redis_db.url))
    assert requests.post(exporter.url + "/-/reload", timeout=10).status_code == 200  # the fixed file, not a stale answer
    assert value(exporter.scrape(), "sollol_exporter_config_last_reload_successful") == 1


def test_sigterm_ends_the_process_within_seconds_while_reads_hang(start_exporter, redis_db):
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)  # accepts (the kernel does), never answers
    port = hung.getsockname()[1]
    try:
        config = base_config(redis_db.url, coordinators=[{"url": f"http://127.0.0.1:{port}", "name": "main", "timeout": "60s"}],
                             ollama={"discover": False, "nodes": [f"127.0.0.1:{port}"], "timeout": "60s"},
                             dashboard={"enabled": True, "url": f"http://127.0.0.1:{port}", "timeout": "60s"})
        exporter = start_exporter(config)
        scrape = threading.Thread(target=lambda: exporter.scrape_text(timeout=60), daemon=True)
        scrape.start()
        time.sleep(1.0)  # every read is now waiting on the silent peer
        started = time.monotonic()
        exporter.process.send_signal(signal.SIGTERM)
        exporter.process.wait(15)
        assert time.monotonic() - started < 7.0
        assert exporter.process.returncode == 0
    finally:
        hung.close()
