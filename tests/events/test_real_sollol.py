"""The real SOLLOL (PyPI sollol 0.9.66, in its own environment) publishing to a real redis-server, the exporter
counting: an OllamaPool over three Ollama stand-ins, and LlamaCppCoordinator over real llama.cpp binaries."""

from __future__ import annotations

import pytest

from tests.support.collect import base_config
from tests.support.exporter import series, value
from tests.support.net import wait_for
from tests.support.replay import ReplayServer, ollama_routes
from tests.support.sollol_package import drive

REQUESTS = 30
SLOW_DELAY = 0.75  # in the (0.5, 1.0] bucket
FAIL_EVERY = 3


def histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus' histogram_quantile over cumulative buckets {le: count} (linear within a bucket)."""
    bounds = sorted(buckets)
    total = buckets[float("inf")]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / (buckets[bound] - below)
        lower, below = bound, buckets[bound]
    return lower


def buckets_of(samples, **labels) -> dict[float, float]:
    found = {}
    for key, count in series(samples, "sollol_request_duration_seconds_bucket").items():
        entry = dict(key)
        if all(entry.get(k) == v for k, v in labels.items()):
            found[float(entry["le"])] = count
    return found


@pytest.fixture
def stand_ins():
    fast, slow, failing = (ReplayServer(ollama_routes()) for _ in range(3))
    slow.routes["/api/chat"].delay = SLOW_DELAY
    failing.routes["/api/chat"].fail_every = FAIL_EVERY
    yield fast, slow, failing
    for server in (fast, slow, failing):
        server.stop()


def test_ollama_pool_requests_errors_and_latency_match_what_the_nodes_served(start_exporter, redis_db, stand_ins):
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"discover": False}))
    wait_for(lambda: value(exporter.scrape(), "sollol_events_subscribed") == 1, 10, what="subscribed")
    result = drive("pool", {"nodes": [s.port for s in stand_ins], "requests": REQUESTS, "redis_port": redis_db.port}, redis_db.url)
    assert result["ok"] == REQUESTS  # a failed attempt is retried on the next node

    def served(server, status):
        return server.routes["/api/chat"].served.get(status, 0)

    total_attempts = sum(served(s, 200) + served(s, 500) for s in stand_ins)
    wait_for(lambda: sum(series(exporter.scrape(), "sollol_requests_total").values()) == total_attempts, 20, what="every attempt counted")
    samples = exporter.scrape()
    for server in stand_ins:
        node = server.address
        assert value(samples, "sollol_requests_total", node=node, model="llama3.2:3b", operation="chat", outcome="success") == served(server, 200)
        errors = value(samples, "sollol_requests_total", node=node, model="llama3.2:3b", operation="unknown", outcome="error")
        assert (errors or 0) == served(server, 500)
        assert buckets_of(samples, node=node)[float("inf")] == served(server, 200)  # histogram count = responses
    failing = stand_ins[2]
    assert served(failing, 500) >= 1
    assert value(samples, "sollol_request_errors_total", node=failing.address, model="llama3.2:3b", reason="http_5xx") == served(failing, 500)
    slow_p95 = histogram_quantile(0.95, buckets_of(samples, node=stand_ins[1].address))
    fast_p95 = histogram_quantile(0.95, buckets_of(samples, node=stand_ins[0].address))
    assert 0.5 < slow_p95 <= 1.0, f"p95 {slow_p95:.3f} s for a node that answers in {SLOW_DELAY} s"
    assert fast_p95 <= 0.1


@pytest.mark.llama
def test_llama_cpp_coordinator_requests_latency_and_lifecycle(start_exporter, redis_db, tiny_model, workers):
    from tests.support import llama

    port = llama.free_port()
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"discover": False},
                                          coordinators=[{"url": f"http://127.0.0.1:{port}", "name": "tiny-coordinator"}]))
    wait_for(lambda: value(exporter.scrape(), "sollol_events_subscribed") == 1, 10, what="subscribed")
    spec = {"model": str(tiny_model), "workers": [w.port for w in workers], "port": port, "requests": 4, "redis_port": redis_db.port}
    result = drive("coordinator", spec, redis_db.url, extra_path=str(llama.bin_dir()))
    assert result["answered"] == 4
    labels = {"coordinator": "tiny-coordinator", "model": "tiny"}
    wait_for(lambda: value(exporter.scrape(), "sollol_coordinator_requests_total", outcome="success", **labels) == 4, 20, what="requests counted")
    samples = exporter.scrape()
    assert value(samples, "sollol_coordinator_request_duration_seconds_count", **labels) == 4
    assert value(samples, "sollol_coordinator_lifecycle_events_total", coordinator="tiny-coordinator", event="start") == 1
    assert value(samples, "sollol_coordinator_rpc_backends_active", coordinator="tiny-coordinator") == 2
    assert value(samples, "sollol_coordinator_requests_total", outcome="error", **labels) is None
