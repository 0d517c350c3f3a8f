"""Hostile peers and concurrent scrapes against the scrape core (issue "Hardening", items 1-3, 8 and 9).

Each test here failed on the exporter before the scrape core kept its own deadlines, bounded every network read
and every JSON value, made its caps visible and kept what SOLLOL told it across reloads.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.fixtures.sollol import GPU, RPC_NODE, VARIANT_B, VARIANT_D, fresh, routing_event
from tests.support.collect import base_config, collect
from tests.support.exporter import one_hot, parse, series, value
from tests.support.hostile import TrickleRoute, TrickleServer
from tests.support.replay import ReplayServer, Route, ollama_routes

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_EVENT = b"[" * 30_000 + b"]" * 30_000  # within the routing event size limit
LLAMA_METRICS = b"""# HELP llamacpp:tokens_predicted_total Number of generation tokens processed.
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 42
"""


@pytest.fixture
def trickle():
    servers = []

    def start(routes):
        server = TrickleServer(routes)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _coordinator(url, timeout="1s"):
    return [{"url": url, "timeout": timeout, "props_interval": "1h"}]


# 1. One scrape must not stall the ones after it.

def test_a_short_scrape_does_not_wait_for_a_longer_one_already_running(start_exporter, redis_db, trickle):
    slow = trickle({"/health": TrickleRoute(b"{}"), "/metrics": TrickleRoute(LLAMA_METRICS, body_interval=1.0)})
    exporter = start_exporter(base_config(redis_db.url, coordinators=_coordinator(slow.url, timeout="30s"), ollama={"discover": False}))
    long_scrape = threading.Thread(target=exporter.scrape_text, kwargs={"timeout": 60})
    long_scrape.start()
    time.sleep(0.5)
    started = time.monotonic()
    reply = exporter.scrape_text(timeout=3)
    elapsed = time.monotonic() - started
    assert reply.status_code == 200
    assert elapsed < 4.0, f"a scrape with a 3 s budget took {elapsed:.1f} s"
    samples = parse(reply.text)
    assert value(samples, "sollol_redis_up") == 1  # what is known by then is still reported
    slow.stop()
    long_scrape.join(40)


# 2. A peer that trickles bytes must not outlive the HTTP timeout.

def test_a_trickling_metrics_body_is_cut_at_the_coordinator_timeout(redis_db, scraper_for, trickle):
    slow = trickle({"/health": TrickleRoute(b"{}"), "/metrics": TrickleRoute(LLAMA_METRICS, body_interval=0.5)})
    scraper = scraper_for(base_config(redis_db.url, coordinators=_coordinator(slow.url), ollama={"discover": False}))
    started = time.monotonic()
    s = collect(scraper, budget=8.0)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"the scrape took {elapsed:.1f} s against a 1 s coordinator timeout"
    # /health answered 200 in time; /metrics did not finish: stalled, not hung
    assert one_hot(s, "sollol_coordinator_state", coordinator=slow.address) == "stalled"


def test_trickling_headers_are_cut_at_the_timeout_too(redis_db, scraper_for, trickle):
    slow = trickle({"/health": TrickleRoute(b"{}", head_interval=0.2)})
    scraper = scraper_for(base_config(redis_db.url, coordinators=_coordinator(slow.url), ollama={"discover": False}))
    started = time.monotonic()
    s = collect(scraper, budget=8.0)
    assert time.monotonic() - started < 2.5
    assert one_hot(s, "sollol_coordinator_state", coordinator=slow.address) == "hung"


def test_an_ollama_node_that_trickles_is_down_within_its_timeout(redis_db, scraper_for, trickle):
    slow = trickle({"/": TrickleRoute(b"Ollama is running", body_interval=0.3)})
    scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False, "nodes": [slow.address], "timeout": "1s"}))
    started = time.monotonic()
    s = collect(scraper, budget=8.0)
    assert time.monotonic() - started < 2.5
    assert value(s, "sollol_ollama_node_up", node=slow.address) == 0


# 3. Deeply nested JSON costs that one value, counted, and nothing else.

def test_deeply_nested_metadata_costs_only_the_metadata(redis_db, scraper_for):
    redis_db.client.set("sollol:router:metadata", DEEP)
    redis_db.client.set("sollol:gpu:10.0.0.5:11434", fresh(GPU), ex=120)
    scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False}))
    s = collect(scraper)
    assert value(s, "sollol_exporter_collection_error") is None
    assert value(s, "sollol_redis_up") == 1
    assert value(s, "sollol_metadata_info", variant="invalid", source="", router_type="") == 1
    assert value(s, "sollol_exporter_invalid_entries", collector="metadata") == 1
    assert value(s, "sollol_gpu_devices", node="10.0.0.5:11434") == 1


def test_one_deeply_nested_gpu_or_registration_key_costs_only_that_key(redis_db, scraper_for):
    redis_db.client.set("sollol:gpu:10.0.0.5:11434", fresh(GPU), ex=120)
    redis_db.client.set("sollol:gpu:10.0.0.6:11434", DEEP, ex=120)
    redis_db.client.set("sollol:rpc:node:10.0.0.45:50052", json.dumps(RPC_NODE), ex=3600)
    redis_db.client.set("sollol:rpc:node:10.0.0.46:50052", DEEP, ex=3600)
    scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"discover": False}))
    s = collect(scraper)
    assert value(s, "sollol_gpu_devices", node="10.0.0.5:11434") == 1
    assert value(s, "sollol_gpu_devices", node="10.0.0.6:11434") is None
    assert value(s, "sollol_exporter_invalid_entries", collector="gpu") == 1
    assert value(s, "sollol_rpc_node_registered", backend="10.0.0.45:50052") == 1
    assert value(s, "sollol_exporter_invalid_entries", collector="rpc_nodes") == 1


def test_deeply_nested_api_ps_leaves_the_node_up(redis_db, scraper_for):
    routes = ollama_routes()
    routes["/api/ps"] = Route(DEEP)
    node = ReplayServer(routes)
    try:
        scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False, "nodes": [node.address]}))
        s = collect(scraper)
        assert value(s, "sollol_ollama_node_up", node=node.address) == 1
        assert value(s, "sollol_exporter_invalid_entries", collector="ollama") == 1
    finally:
        node.stop()


def test_one_deeply_nested_routing_event_costs_only_that_event(redis_db, scraper_for):
    scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"discover": False}))
    redis_db.client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event())})
    collect(scraper)  # the first scrape marks the position
    for raw in (json.dumps(routing_event()), DEEP_EVENT, json.dumps(routing_event()), json.dumps(routing_event())):
        redis_db.client.xadd("sollol:routing_stream", {"event": raw})
    s = collect(scraper)
    assert value(s, "sollol_routing_events_total", event_type="OLLAMA_NODE_SELECTED") == 3
    assert value(s, "sollol_routing_invalid_events_total") == 1


# 8. Caps say what they dropped; repeated series from a peer are kept once.

def test_keys_past_the_cap_are_counted_as_dropped(redis_db, scraper_for):
    pipe = redis_db.client.pipeline(transaction=False)
    for index in range(10_005):
        pipe.set(f"sollol:rpc:node:10.{index // 65536}.{index // 256 % 256}.{index % 256}:50052", json.dumps(RPC_NODE), ex=600)
    pipe.execute()
    scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"discover": False}))
    s = collect(scraper, budget=20.0)
    assert len(series(s, "sollol_rpc_node_registered")) == 10_000
    assert value(s, "sollol_exporter_dropped_entries", collector="rpc_nodes") == 5


def test_repeated_series_from_a_coordinator_are_kept_once_and_counted(redis_db, scraper_for):
    doubled = LLAMA_METRICS + b"llamacpp:tokens_predicted_total 43\n"
    coordinator = ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route(doubled, content_type="text/plain; version=0.0.4")})
    try:
        scraper = scraper_for(base_config(redis_db.url, coordinators=_coordinator(coordinator.url), ollama={"discover": False}))
        s = collect(scraper)
        assert value(s, "sollol_coordinator_tokens_predicted_total", coordinator=coordinator.address) == 42
        assert value(s, "sollol_exporter_invalid_entries", collector="coordinator") == 1
    finally:
        coordinator.stop()


# 9. A reload keeps what SOLLOL told us; targets the new config no longer names disappear.

def test_sighup_keeps_workers_counters_and_cursor(start_exporter, redis_db):
    config = base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"timeout": "300ms", "static": [{"address": "127.0.0.1:9"}]})
    redis_db.client.set("sollol:router:metadata", json.dumps(VARIANT_B), ex=3600)
    redis_db.client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event())})
    exporter = start_exporter(config)
    exporter.scrape()  # marks the stream position
    # SynapticLlamas overwrites the key: RayHybridRouter's workers are kept from the earlier reading
    redis_db.client.set("sollol:router:metadata", fresh(VARIANT_D), ex=30)
    redis_db.client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event())})
    before = exporter.scrape()
    assert value(before, "sollol_rpc_backend_up", backend="10.0.0.45:50052") is not None
    assert value(before, "sollol_routing_events_total", event_type="OLLAMA_NODE_SELECTED") == 1

    config["rpc_backends"]["static"] = []  # the new config no longer names 127.0.0.1:9
    exporter.write_config(config)
    exporter.reload()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and value(exporter.scrape(), "sollol_rpc_backend_up", backend="127.0.0.1:9") is not None:
        time.sleep(0.1)
    redis_db.client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event())})
    after = exporter.scrape()
    assert value(after, "sollol_rpc_backend_up", backend="127.0.0.1:9") is None
    assert value(after, "sollol_exporter_config_last_reload_successful") == 1
    assert value(after, "sollol_rpc_backend_up", backend="10.0.0.45:50052") is not None
    assert value(after, "sollol_rpc_backend_up", backend="10.0.0.48:50052") is not None
    # neither reset to zero nor re-read from the start of the stream
    assert value(after, "sollol_routing_events_total", event_type="OLLAMA_NODE_SELECTED") == 2
    assert value(after, "sollol_router_requests_total", source="synaptic_llamas") == 40


# Found by a hostile review after the first round.

def test_escaped_quotes_cannot_make_parsing_quadratic(start_exporter, redis_db):
    redis_db.client.set("sollol:router:metadata", b'"' + b'\\"' * 48_000)
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"discover": False}))
    for _ in range(2):
        started = time.monotonic()
        samples = parse(exporter.scrape_text(timeout=2).text)
        assert time.monotonic() - started < 3.0
        assert value(samples, "sollol_exporter_invalid_entries", collector="metadata") == 1


def test_a_lone_surrogate_in_an_event_or_stream_entry_costs_nothing_else(start_exporter, redis_db):
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"discover": False}))
    exporter.scrape()
    redis_db.client.xadd("sollol:routing_stream", {"event": '{"event_type": "X\\ud800Y"}'})
    redis_db.client.publish("sollol:dashboard:ollama:activity",
                            '{"event_type": "ollama_response", "backend": "10.0.0.2:11434", "details": {"model": "bad\\ud800x", "latency_ms": 5}}')
    time.sleep(0.5)
    for _ in range(2):
        reply = exporter.scrape_text()
        assert reply.status_code == 200
        samples = parse(reply.text)
    assert value(samples, "sollol_routing_events_total", event_type="X?Y") == 1
    assert value(samples, "sollol_requests_total", node="10.0.0.2:11434", model="bad?x", operation="unknown", outcome="success", streaming="false") == 1


def test_a_routing_timestamp_from_the_far_future_is_not_believed(redis_db, scraper_for):
    scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"discover": False}))
    redis_db.client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event())})
    collect(scraper)
    future = {**routing_event(), "timestamp": "9999-12-31T23:59:59+14:00"}
    redis_db.client.xadd("sollol:routing_stream", {"event": json.dumps(future)})
    redis_db.client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event())})
    s = collect(scraper)
    assert value(s, "sollol_routing_events_total", event_type="OLLAMA_NODE_SELECTED") == 2
    assert value(s, "sollol_routing_last_event_timestamp_seconds") < time.time() + 3600


def test_a_replaced_scraper_still_reading_does_not_count_the_stream_twice(redis_db, tmp_path):
    from sollol_exporter.cluster import ClusterState
    from sollol_exporter.scrape import Scraper
    from tests.support.collect import make_config

    config = make_config(tmp_path, base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"discover": False}))
    cluster = ClusterState(3600, 60)
    old, new = Scraper(config, cluster), Scraper(config, cluster)
    try:
        redis_db.client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event())})
        collect(new)  # marks the position
        cursor = cluster.routing.cursor
        for _ in range(3):
            redis_db.client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event())})
        stale = old.sources.redis.read(time.monotonic() + 5, cursor)  # the old scraper's read began before the new one's
        collect(new)
        old.sources.redis.read = lambda deadline, routing_cursor: stale
        old.sources.read_redis(time.monotonic() + 5)
        assert cluster.routing.events == {"OLLAMA_NODE_SELECTED": 3}
    finally:
        old.close()
        new.close()
        cluster.close()


def test_an_https_coordinator_is_read_and_its_trickle_cut(redis_db, scraper_for, monkeypatch, tmp_path):
    import ssl

    import trustme

    from sollol_exporter.sources import http_client

    ca = trustme.CA()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    monkeypatch.setattr(http_client, "_TLS", client_context)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    good = TrickleServer({"/health": TrickleRoute(b"{}"), "/metrics": TrickleRoute(LLAMA_METRICS)}, tls=server_context)
    slow = TrickleServer({"/health": TrickleRoute(b"{}"), "/metrics": TrickleRoute(LLAMA_METRICS, body_interval=0.5)}, tls=server_context)
    try:
        coordinators = [{"url": f"https://{good.address}", "name": "good", "timeout": "1s"},
                        {"url": f"https://{slow.address}", "name": "slow", "timeout": "1s"}]
        scraper = scraper_for(base_config(redis_db.url, coordinators=coordinators, ollama={"discover": False}))
        started = time.monotonic()
        s = collect(scraper, budget=8.0)
        assert time.monotonic() - started < 2.5
        assert one_hot(s, "sollol_coordinator_state", coordinator="good") == "ok"
        assert value(s, "sollol_coordinator_tokens_predicted_total", coordinator="good") == 42
        assert one_hot(s, "sollol_coordinator_state", coordinator="slow") == "stalled"
    finally:
        good.stop()
        slow.stop()


def test_a_truncated_metrics_body_is_not_relayed(redis_db, scraper_for):
    cut = TrickleServer({"/health": TrickleRoute(b"{}"), "/metrics": TrickleRoute(LLAMA_METRICS, declared_length=len(LLAMA_METRICS) + 100)})
    try:
        scraper = scraper_for(base_config(redis_db.url, coordinators=_coordinator(cut.url), ollama={"discover": False}))
        s = collect(scraper)
        assert value(s, "sollol_coordinator_metrics_up", coordinator=cut.address) == 0
        assert value(s, "sollol_coordinator_tokens_predicted_total", coordinator=cut.address) is None
    finally:
        cut.stop()


def test_vanished_applications_are_capped(redis_db, scraper_for):
    from sollol_exporter.sources.bundle import MAX_KNOWN_APPLICATIONS
    from tests.support.replay import dashboard_routes

    dashboard = ReplayServer(dashboard_routes(apps=[]))
    try:
        scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"discover": False},
                                          dashboard={"enabled": True, "url": dashboard.url, "forget_after": "1h"}))
        for round_ in range(3):
            apps = [{"app_id": f"{round_}-{i}", "name": f"app-{round_}-{i}", "router_type": "r", "status": "active"} for i in range(1000)]
            dashboard.routes.update(dashboard_routes(apps=apps))
            s = collect(scraper)
        assert len(series(s, "sollol_application_up")) == MAX_KNOWN_APPLICATIONS
        assert value(s, "sollol_exporter_dropped_entries", collector="applications") == 1000
    finally:
        dashboard.stop()


def test_an_api_key_file_that_is_not_utf8_does_not_make_the_coordinator_hung(redis_db, scraper_for, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_bytes(b"abc\xff")
    coordinator = ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route(LLAMA_METRICS, content_type="text/plain; version=0.0.4")})
    try:
        scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False},
                                          coordinators=[{"url": coordinator.url, "name": "a", "api_key_file": str(key_file)}]))
        s = collect(scraper)
        assert one_hot(s, "sollol_coordinator_state", coordinator="a") == "ok"
        assert value(s, "sollol_coordinator_tokens_predicted_total", coordinator="a") == 42
    finally:
        coordinator.stop()


def test_an_empty_api_key_file_is_said_once_and_sends_no_header(redis_db, scraper_for, tmp_path, caplog):
    key_file = tmp_path / "key"
    key_file.write_text("\n")
    coordinator = ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route(LLAMA_METRICS, content_type="text/plain; version=0.0.4")})
    try:
        scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False},
                                          coordinators=[{"url": coordinator.url, "name": "a", "api_key_file": str(key_file)}]))
        for _ in range(2):
            s = collect(scraper)
            assert one_hot(s, "sollol_coordinator_state", coordinator="a") == "ok"
        warnings = [r for r in caplog.records if r.getMessage() == "cannot use api_key_file"]
        assert [r.fields["error"] for r in warnings] == ["empty: no key is sent"]
    finally:
        coordinator.stop()
