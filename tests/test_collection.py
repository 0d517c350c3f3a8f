"""What one collection reads: a collector turned off (--no-collector.<name>) costs its source nothing."""

from __future__ import annotations

import dataclasses

from sollol_exporter.scrape import Scraper
from tests.support.collect import base_config, collect, make_config
from tests.support.exporter import series
from tests.support.net import wait_for
from tests.support.replay import ReplayServer, Route


def coordinator_stand_in() -> ReplayServer:
    return ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route("", status=501), "/props": Route({"total_slots": 1})})


def scraper(tmp_path, data: dict, disabled: set[str]) -> Scraper:
    config = make_config(tmp_path, data)
    return Scraper(dataclasses.replace(config, disabled_collectors=frozenset(disabled)))


def test_turned_off_collectors_read_nothing(tmp_path, redis_db, ollama, dashboard):
    coordinator = coordinator_stand_in()
    data = base_config(redis_db.url, coordinators=[{"url": coordinator.url, "name": "main"}], ollama={"nodes": [ollama.address]},
                       dashboard={"enabled": True, "url": dashboard.url})
    made = scraper(tmp_path, data, {"ollama", "applications", "coordinator", "rpc_backends", "events"})
    try:
        samples = collect(made)
        assert ollama.requests == [] and dashboard.requests == [] and coordinator.requests == []
        assert series(samples, "sollol_ollama_node_up") == {} and series(samples, "sollol_coordinator_up") == {}
        assert redis_db.client.pubsub_numsub("sollol:dashboard:ollama:activity") == [(b"sollol:dashboard:ollama:activity", 0)]
    finally:
        made.close()
        coordinator.stop()


def test_workers_still_learn_their_coordinators_state_without_its_collector(tmp_path, redis_db):
    """A worker held by its coordinator reads busy only while that coordinator is up, so the coordinator's /health
    is still read when only the coordinator collector is off."""
    coordinator = coordinator_stand_in()
    made = scraper(tmp_path, base_config(redis_db.url, coordinators=[{"url": coordinator.url, "name": "main"}]), {"coordinator"})
    try:
        samples = collect(made)
        assert coordinator.paths() == ["/health"]  # not /metrics (it resets llama-server's gauges) nor /props
        assert series(samples, "sollol_coordinator_up") == {}
    finally:
        made.close()
        coordinator.stop()


def test_redis_is_not_read_when_nothing_needs_it(tmp_path, redis_db):
    made = scraper(tmp_path, base_config(redis_db.url), {"redis", "metadata", "gpu", "rpc_nodes", "routing", "ollama", "rpc_backends"})
    try:
        before = redis_db.client.info("stats")["total_commands_processed"]
        collect(made)
        collect(made)
        # the events subscriber's own connection may ping; the per-scrape read (PING, TYPE, TTL, SCAN...) is gone
        assert redis_db.client.info("stats")["total_commands_processed"] - before <= 3
    finally:
        made.close()


def test_events_on_subscribes(tmp_path, redis_db):
    made = scraper(tmp_path, base_config(redis_db.url), set())
    try:
        wait_for(lambda: redis_db.client.pubsub_numsub("sollol:dashboard:ollama:activity")[0][1] == 1, 10, what="subscribed")
    finally:
        made.close()
