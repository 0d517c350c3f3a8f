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
