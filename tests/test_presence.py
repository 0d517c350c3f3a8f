"""Only what exists is expected: a default coordinator, dashboard or Redis that nothing names and nothing has
answered at is absent (no `_up` series, its collector not failing); named in the file, announced by SOLLOL or seen
once, it is expected, and going away reads as down."""

from __future__ import annotations

import json

import pytest

from sollol_exporter import config as config_module
from sollol_exporter.scrape import Scraper
from tests.fixtures.sollol import RPC_NODE, VARIANT_B
from tests.support.collect import base_config, collect
from tests.support.exporter import one_hot, series, value
from tests.support.net import free_port, wait_for
from tests.support.replay import ReplayServer, Route
from tests.support.sollol_events import RPC_CHANNEL, rpc_event


def coordinator_routes() -> dict[str, Route]:
    """A llama-server that answers /health and, started without --metrics, 501 on /metrics."""
    return {"/health": Route({"status": "ok"}), "/metrics": Route({"error": "not enabled"}, status=501),
            "/props": Route({"total_slots": 1, "build_info": "b6000-abcdef"})}


@pytest.fixture
def scraper_from_env():
    """Scrapers built as `sollol-exporter` with no config file builds them: defaults plus SOLLOL_* variables."""
    made = []

    def build(**env) -> Scraper:
        scraper = Scraper(config_module.load(None, env=env))
        made.append(scraper)
        return scraper

    yield build
    for scraper in made:
        scraper.close()


def nowhere() -> str:
    return str(free_port())  # a loopback port where nothing listens


def failing_collectors(samples) -> set[str]:
    return {dict(labels)["collector"] for labels, v in series(samples, "sollol_exporter_collector_success").items() if v == 0}


def test_defaults_where_nothing_answers_are_absent_not_down(redis_db, scraper_from_env):
    coordinator_port, dashboard_port = nowhere(), nowhere()
    scraper = scraper_from_env(SOLLOL_REDIS_URL=redis_db.url, SOLLOL_COORDINATOR_PORT=coordinator_port,
                               SOLLOL_DASHBOARD_PORT=dashboard_port)
    for _ in range(2):
        s = collect(scraper)
        name = f"localhost:{coordinator_port}"
        assert series(s, "sollol_coordinator_up") == {}
        assert one_hot(s, "sollol_coordinator_state", coordinator=name) == "absent"
        assert series(s, "sollol_dashboard_up") == {}
        assert value(s, "sollol_redis_up") == 1  # it answered, so it is expected from now on
        assert "coordinator" not in failing_collectors(s) and "applications" not in failing_collectors(s)
        assert value(s, "sollol_exporter_target_expected", kind="coordinator", target=name) == 0
        assert value(s, "sollol_exporter_target_expected", kind="dashboard", target=f"localhost:{dashboard_port}") == 0
        assert value(s, "sollol_exporter_target_expected", kind="redis", target=f"127.0.0.1:{redis_db.port}") == 1


def test_a_redis_that_never_answered_is_absent_and_fails_no_collector(scraper_from_env):
    scraper = scraper_from_env(SOLLOL_REDIS_URL=f"redis://127.0.0.1:{nowhere()}/0", SOLLOL_COORDINATOR_PORT=nowhere(),
                               SOLLOL_DASHBOARD_PORT=nowhere())
    s = collect(scraper, 2.0)
    assert series(s, "sollol_redis_up") == {}
    assert failing_collectors(s) == set()


def test_a_redis_that_answered_once_is_down_when_it_goes(tmp_path):
    from tests.support.redis_server import RedisServer

    own = RedisServer(tmp_path)
    scraper = Scraper(config_module.load(None, env={"SOLLOL_REDIS_URL": own.url, "SOLLOL_COORDINATOR_PORT": nowhere(),
                                                    "SOLLOL_DASHBOARD_PORT": nowhere()}))
    try:
        assert value(collect(scraper), "sollol_redis_up") == 1
        own.stop()
        s = collect(scraper, 2.0)
        assert value(s, "sollol_redis_up") == 0
        assert {"redis", "metadata", "gpu", "rpc_nodes", "routing"} <= failing_collectors(s)
    finally:
        scraper.close()
        own.stop()


def test_a_coordinator_that_answered_once_is_down_when_it_goes(redis_db, scraper_from_env):
    server = ReplayServer(coordinator_routes())
    port = str(server.port)
    scraper = scraper_from_env(SOLLOL_REDIS_URL=redis_db.url, SOLLOL_COORDINATOR_HOST="127.0.0.1", SOLLOL_COORDINATOR_PORT=port,
                               SOLLOL_DASHBOARD_PORT=nowhere())
    name = f"127.0.0.1:{port}"
    try:
        s = collect(scraper)
        assert value(s, "sollol_coordinator_up", coordinator=name) == 1
        assert one_hot(s, "sollol_coordinator_state", coordinator=name) == "ok"
    finally:
        server.stop()
    s = collect(scraper)
    assert value(s, "sollol_coordinator_up", coordinator=name) == 0
    assert one_hot(s, "sollol_coordinator_state", coordinator=name) == "unreachable"
    assert value(s, "sollol_exporter_target_expected", kind="coordinator", target=name) == 1


def test_parts_the_config_file_names_are_expected_from_the_start(redis_db, scraper_for):
    coordinator_port, dashboard_port = nowhere(), nowhere()
    scraper = scraper_for(base_config(redis_db.url, coordinators=[{"url": f"http://127.0.0.1:{coordinator_port}", "name": "main"}],
                                      dashboard={"enabled": True, "url": f"http://127.0.0.1:{dashboard_port}"}))
    s = collect(scraper)
    assert value(s, "sollol_coordinator_up", coordinator="main") == 0
    assert value(s, "sollol_dashboard_up") == 0
    assert {"applications"} <= failing_collectors(s)


def test_workers_alone_do_not_make_a_coordinator_expected(redis_db, scraper_from_env):
    """RayHybridRouter writes its workers into the metadata at start and starts llama-server only for the first
    request that needs it: workers (registered, in the metadata, or in the file) say nothing of a coordinator."""
    port = nowhere()
    scraper = scraper_from_env(SOLLOL_REDIS_URL=redis_db.url, SOLLOL_COORDINATOR_PORT=port, SOLLOL_DASHBOARD_PORT=nowhere())
    redis_db.client.set(f"sollol:rpc:node:127.0.0.1:{nowhere()}", json.dumps(RPC_NODE), ex=3600)
    redis_db.client.set("sollol:router:metadata", json.dumps({**VARIANT_B, "rpc_backends": [{"host": "127.0.0.1", "port": int(nowhere())}]}), ex=3600)
    s = collect(scraper)
    assert series(s, "sollol_coordinator_up") == {}
    assert one_hot(s, "sollol_coordinator_state", coordinator=f"localhost:{port}") == "absent"
    # and no worker names the absent coordinator as the one it serves
    assert not any(dict(labels)["coordinator"] == f"localhost:{port}" for labels in series(s, "sollol_rpc_backend_coordinator_info"))
    redis_db.client.publish(RPC_CHANNEL, rpc_event("rpc_backend_connect", "rpc_registry", type="heartbeat", total_active=1))
    assert series(collect(scraper), "sollol_coordinator_up") == {}


def test_a_part_that_answers_badly_is_there_and_down(tmp_path, scraper_from_env):
    """Something that speaks the protocol is present even when it is of no use: a Redis refusing the password, a
    coordinator that accepts connections and never answers, one that answers an error."""
    import socket

    from tests.support.redis_server import RedisServer

    guarded = RedisServer(tmp_path)
    guarded.client.config_set("requirepass", "right")
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    try:
        scraper = scraper_from_env(SOLLOL_REDIS_URL=f"redis://:wrong@127.0.0.1:{guarded.port}/0", SOLLOL_COORDINATOR_HOST="127.0.0.1",
                                   SOLLOL_COORDINATOR_PORT=str(hung.getsockname()[1]), SOLLOL_DASHBOARD_PORT=nowhere())
        s = collect(scraper, 7.0)  # past the coordinator's 5 s timeout: its read ends as hung
        assert value(s, "sollol_redis_up") == 0
        assert value(s, "sollol_coordinator_up", coordinator=f"127.0.0.1:{hung.getsockname()[1]}") == 0
        assert one_hot(s, "sollol_coordinator_state", coordinator=f"127.0.0.1:{hung.getsockname()[1]}") == "hung"
    finally:
        hung.close()
        guarded.client = __import__("redis").Redis(host="127.0.0.1", port=guarded.port, password="right")
        guarded.stop()


def test_redis_at_another_address_after_a_reload_starts_absent(redis_db, tmp_path):
    from sollol_exporter.state import State

    path = tmp_path / "config.yml"
    path.write_text(f"redis: {{url: '{redis_db.url}'}}\ncoordinators: []\ndashboard: {{enabled: false}}\n")
    env = {"SOLLOL_REDIS_URL": f"redis://127.0.0.1:{nowhere()}/0"}
    state = State(config_module.load(str(path), env=env), str(path))
    try:
        assert value(collect(state.scraper), "sollol_redis_up") == 1
        path.write_text("coordinators: []\ndashboard: {enabled: false}\n")  # now only the variable names one, where nothing answers
        assert state.reload(lambda p: config_module.load(p, env=env))
        assert series(collect(state.scraper, 1.5), "sollol_redis_up") == {}
    finally:
        state.close()


def test_an_event_about_the_coordinator_makes_it_expected_by_any_loopback_name(redis_db, scraper_from_env):
    port = nowhere()
    scraper = scraper_from_env(SOLLOL_REDIS_URL=redis_db.url, SOLLOL_COORDINATOR_PORT=port, SOLLOL_DASHBOARD_PORT=nowhere())
    other = nowhere()
    wait_for(lambda: value(collect(scraper), "sollol_events_subscribed") == 1, 10, what="subscribed")
    # SOLLOL names a coordinator elsewhere: not this one
    redis_db.client.publish(RPC_CHANNEL, rpc_event("coordinator_start", f"10.0.0.40:{other}", model="tiny"))
    # LlamaCppCoordinator(host="127.0.0.1") names the default localhost coordinator by its address
    redis_db.client.publish(RPC_CHANNEL, rpc_event("coordinator_start", f"127.0.0.1:{port}", model="tiny"))
    wait_for(lambda: series(collect(scraper), "sollol_coordinator_up"), 10, what="coordinator expected")
    s = collect(scraper)
    assert value(s, "sollol_coordinator_up", coordinator=f"localhost:{port}") == 0
    assert value(s, "sollol_coordinator_lifecycle_events_total", coordinator=f"localhost:{port}", event="start") == 1


def test_an_event_about_another_coordinator_does_not(redis_db, scraper_from_env):
    port = nowhere()
    scraper = scraper_from_env(SOLLOL_REDIS_URL=redis_db.url, SOLLOL_COORDINATOR_PORT=port, SOLLOL_DASHBOARD_PORT=nowhere())
    wait_for(lambda: value(collect(scraper), "sollol_events_subscribed") == 1, 10, what="subscribed")
    redis_db.client.publish(RPC_CHANNEL, rpc_event("coordinator_start", f"10.0.0.40:{port}", model="tiny"))
    wait_for(lambda: value(collect(scraper), "sollol_coordinator_lifecycle_events_total", coordinator=f"10.0.0.40:{port}", event="start") == 1,
             10, what="event counted")
    assert series(collect(scraper), "sollol_coordinator_up") == {}


def test_expectation_survives_a_reload(redis_db, tmp_path):
    from sollol_exporter.state import State

    server = ReplayServer(coordinator_routes())
    env = {"SOLLOL_REDIS_URL": redis_db.url, "SOLLOL_COORDINATOR_HOST": "127.0.0.1", "SOLLOL_COORDINATOR_PORT": str(server.port),
           "SOLLOL_DASHBOARD_PORT": nowhere()}
    state = State(config_module.load(None, env=env), None)
    try:
        collect(state.scraper)
        server.stop()
        assert state.reload(lambda path: config_module.load(path, env=env))
        assert value(collect(state.scraper), "sollol_coordinator_up", coordinator=f"127.0.0.1:{server.port}") == 0
    finally:
        state.close()


def test_required_parts_are_expected_from_the_first_scrape_with_their_urls_from_the_environment(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("redis: {required: true}\ndashboard: {required: true}\ncoordinators: []\n")
    env = {"SOLLOL_REDIS_URL": f"redis://127.0.0.1:{nowhere()}/0", "SOLLOL_DASHBOARD_PORT": nowhere()}
    scraper = Scraper(config_module.load(str(path), env=env))
    try:
        s = collect(scraper, 1.5)
        assert value(s, "sollol_redis_up") == 0 and value(s, "sollol_dashboard_up") == 0
        assert {"redis", "applications"} <= failing_collectors(s)
    finally:
        scraper.close()
