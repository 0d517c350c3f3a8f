"""No source starves another: slow Ollama nodes, a stalled Redis or a stalled name lookup never make a healthy
coordinator or dashboard read down, and a scrape never gets a reading that finished before it started."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from sollol_exporter import resolver
from tests.fixtures.sollol import GPU, VARIANT_A, fresh
from tests.support.collect import base_config, collect
from tests.support.exporter import value
from tests.support.replay import ReplayServer, Route, dashboard_routes, ollama_routes


@pytest.fixture
def healthy():
    coordinator = ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route("", status=501), "/props": Route({"total_slots": 1})})
    dashboard = ReplayServer(dashboard_routes())
    yield coordinator, dashboard
    coordinator.stop()
    dashboard.stop()


def silent_listeners(count: int) -> list[socket.socket]:
    """Ports whose kernel accepts connections that nobody ever answers."""
    made = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        made.append(sock)
    return made


def test_two_hundred_silent_nodes_do_not_starve_the_coordinator_or_the_dashboard(redis_db, scraper_for, healthy):
    coordinator, dashboard = healthy
    silent = silent_listeners(200)
    try:
        doc = json.loads(fresh(VARIANT_A))
        doc["nodes"] = [{**doc["nodes"][0], "url": f"http://127.0.0.1:{s.getsockname()[1]}", "host": f"127.0.0.1:{s.getsockname()[1]}"} for s in silent]
        redis_db.client.set("sollol:router:metadata", json.dumps(doc), ex=30)
        scraper = scraper_for(base_config(redis_db.url, coordinators=[{"url": coordinator.url, "name": "main"}],
                                          dashboard={"enabled": True, "url": dashboard.url}, ollama={"timeout": "5s"}))
        for _ in range(3):
            s = collect(scraper, 3.0)
            assert value(s, "sollol_coordinator_up", coordinator="main") == 1
            assert value(s, "sollol_dashboard_up") == 1
    finally:
        for sock in silent:
            sock.close()


def test_a_stalled_name_lookup_costs_only_its_own_node(redis_db, scraper_for, healthy, monkeypatch):
    coordinator, dashboard = healthy
    release = threading.Event()

    def stalled(host, port, **kwargs):
        if host.endswith(".stall.test"):
            release.wait(30)  # a DNS server that never answers
        return socket.getaddrinfo("127.0.0.1", port, **kwargs)

    monkeypatch.setattr(resolver, "_SHARED", resolver.Resolver(stalled, threads=2))
    node = ReplayServer(ollama_routes())
    try:
        names = [f"n{i}.stall.test:11434" for i in range(40)]
        scraper = scraper_for(base_config(redis_db.url, coordinators=[{"url": coordinator.url, "name": "main"}],
                                          dashboard={"enabled": True, "url": dashboard.url},
                                          ollama={"discover": False, "nodes": [node.address, *names]}))
        started = time.monotonic()
        s = collect(scraper, 2.0)
        assert time.monotonic() - started < 3.0
        assert value(s, "sollol_coordinator_up", coordinator="main") == 1 and value(s, "sollol_dashboard_up") == 1
        assert value(s, "sollol_ollama_node_up", node=node.address) == 1
        assert value(s, "sollol_ollama_node_up", node="n0.stall.test:11434") == 0
    finally:
        release.set()
        node.stop()


def test_a_stalled_redis_leaves_the_budget_to_the_others(redis_db, scraper_for, healthy):
    """A Redis that stops answering (CLIENT PAUSE) with a budget shorter than redis.timeout: the static coordinator
    and the dashboard still read up, and the node Redis named the last time is still probed."""
    coordinator, dashboard = healthy
    node = ReplayServer(ollama_routes())
    try:
        doc = json.loads(fresh(VARIANT_A))
        doc["nodes"] = [{**doc["nodes"][0], "url": node.url, "host": node.address}]
        redis_db.client.set("sollol:router:metadata", json.dumps(doc), ex=30)
        scraper = scraper_for(base_config(redis_db.url, coordinators=[{"url": coordinator.url, "name": "main"}],
                                          dashboard={"enabled": True, "url": dashboard.url}, redis={"url": redis_db.url, "timeout": "2s"}))
        assert value(collect(scraper), "sollol_ollama_node_up", node=node.address) == 1
        redis_db.client.client_pause(4000)
        s = collect(scraper, 1.5)
        assert value(s, "sollol_redis_up") == 0
        assert value(s, "sollol_coordinator_up", coordinator="main") == 1
        assert value(s, "sollol_dashboard_up") == 1
        assert value(s, "sollol_ollama_node_up", node=node.address) == 1
    finally:
        redis_db.client.client_unpause()
        node.stop()


def test_a_short_scrape_during_a_long_one_reads_redis_afresh(redis_db, scraper_for):
    """A 10 s scrape held by a slow coordinator must not hand its 0 s Redis reading to a 2 s scrape that starts
    later: the short scrape sees a GPU report written just before it."""
    slow = ReplayServer({"/health": Route({"status": "ok"}, delay=6), "/metrics": Route("", status=501)})
    try:
        scraper = scraper_for(base_config(redis_db.url, coordinators=[{"url": slow.url, "name": "slow", "timeout": "8s"}]))
        long_scrape = threading.Thread(target=lambda: collect(scraper, 10.0))
        long_scrape.start()
        time.sleep(1.0)
        redis_db.client.set("sollol:gpu:10.0.0.5:11434", json.dumps(dict(GPU, timestamp=time.time())), ex=120)
        s = collect(scraper, 2.0)
        gpu = [labels for name, labels in s if name == "sollol_gpu_memory_total_bytes"]
        assert gpu and dict(gpu[0])["node"] == "10.0.0.5:11434"
        long_scrape.join(15)
    finally:
        slow.stop()


def test_fresh_hostile_node_names_every_round_cost_a_bounded_log(start_exporter, redis_db):
    """One metadata key naming thousands of nodes, new ones each round: the log says how many fail, not each one."""
    from tests.support.net import free_port

    dead = free_port()  # refused at once
    exporter = start_exporter(base_config(redis_db.url, ollama={"timeout": "1s"}))
    for round_ in range(3):
        doc = json.loads(fresh(VARIANT_A))
        doc["nodes"] = [{**doc["nodes"][0], "url": f"http://127.{round_}.{i // 250}.{i % 250 + 1}:{dead}",
                         "host": f"127.{round_}.{i // 250}.{i % 250 + 1}:{dead}"} for i in range(1500)]
        redis_db.client.set("sollol:router:metadata", json.dumps(doc), ex=30)
        assert exporter.scrape_text(timeout=10).status_code == 200
    failing = [line for line in exporter.read_log().splitlines() if "msg=failing" in line or '"failing"' in line]
    assert len(failing) <= 3 * 21 + 5, len(failing)
    assert any("more" in line for line in failing)


def test_a_long_scrape_does_not_inherit_a_short_scrape_s_deadline(redis_db, scraper_for):
    """Two scrapes with different budgets while Redis pauses: the long one must not share the short one's read,
    which ends at the short budget."""
    scraper = scraper_for(base_config(redis_db.url, redis={"url": redis_db.url, "timeout": "2s"}))
    collect(scraper)
    redis_db.client.client_pause(1500)
    try:
        short = threading.Thread(target=lambda: collect(scraper, 1.5))
        short.start()
        time.sleep(0.1)
        assert value(collect(scraper, 20.0), "sollol_redis_up") == 1
        short.join(10)
    finally:
        redis_db.client.client_unpause()


def test_a_scrape_during_a_reload_holds_what_it_reads(redis_db, tmp_path, healthy):
    """The scrape takes its hold on the sources under the same lock the reload swaps them under."""
    from sollol_exporter import config as config_module
    from sollol_exporter.state import State

    coordinator, _ = healthy
    path = tmp_path / "config.yml"
    path.write_text(json.dumps(base_config(redis_db.url, coordinators=[{"url": coordinator.url, "name": "main"}])))
    state = State(config_module.load(str(path), env={}), str(path))
    try:
        original = state.scraper.collect

        def collect_after_a_reload(budget):
            assert state.reload(lambda p: config_module.load(p, env={}))  # lands between the lookup and the read
            return original(budget)

        state.scraper.collect = collect_after_a_reload
        families = {f.name: f for f in state.families(3.0)}
        up = [s.value for s in families["sollol_coordinator_up"].samples]
        assert up == [1.0]
    finally:
        state.close()



def test_silent_ggml_workers_leave_the_connect_probes_their_time(redis_db, scraper_for):
    """Each probe kind may use the whole budget, beside the others: 48 workers that take the handshake's
    connection and never answer (three rounds of the handshake pool's 16 threads, each waiting out the timeout)
    must not leave the TCP-probed workers unprobed."""
    silent = silent_listeners(48)
    answering = silent_listeners(5)  # a TCP probe only connects and closes: the kernel's accept is the answer
    try:
        static = [{"address": f"127.0.0.1:{s.getsockname()[1]}", "probe": "ggml"} for s in silent]
        static += [{"address": f"127.0.0.1:{s.getsockname()[1]}"} for s in answering]
        scraper = scraper_for(base_config(redis_db.url, rpc_backends={"static": static, "timeout": "1s"}))
        for _ in range(2):
            s = collect(scraper, 2.5)
            assert [value(s, "sollol_rpc_backend_up", backend=f"127.0.0.1:{a.getsockname()[1]}") for a in answering] == [1] * 5
    finally:
        for sock in silent + answering:
            sock.close()
