"""The real SOLLOL (PyPI sollol 0.9.66, in its own environment) publishing to a real redis-server, the exporter
counting: an OllamaPool over three Ollama stand-ins (unstreamed, and streamed and unstreamed requests at once from
several threads), and LlamaCppCoordinator over real llama.cpp binaries."""

from __future__ import annotations

import pytest

from tests.support.collect import base_config
from tests.support.exporter import series, value
from tests.support.net import free_port, wait_for
from tests.support.replay import OllamaChatRoute, ReplayServer, ollama_routes
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
        successes = value(samples, "sollol_requests_total", node=node, model="llama3.2:3b", operation="chat", outcome="success", streaming="false")
        assert successes == served(server, 200)
        errors = value(samples, "sollol_requests_total", node=node, model="llama3.2:3b", operation="unknown", outcome="error", streaming="false")
        assert (errors or 0) == served(server, 500)
        assert buckets_of(samples, node=node)[float("inf")] == served(server, 200)  # histogram count = responses
    failing = stand_ins[2]
    assert served(failing, 500) >= 1
    assert value(samples, "sollol_request_errors_total", node=failing.address, model="llama3.2:3b", reason="http_5xx") == served(failing, 500)
    slow_p95 = histogram_quantile(0.95, buckets_of(samples, node=stand_ins[1].address))
    fast_p95 = histogram_quantile(0.95, buckets_of(samples, node=stand_ins[0].address))
    assert 0.5 < slow_p95 <= 1.0, f"p95 {slow_p95:.3f} s for a node that answers in {SLOW_DELAY} s"
    assert fast_p95 <= 0.1


# Round robin over three nodes: a mix whose pattern repeats every three requests (say 15 and 30) would send each
# node one kind only. 16 and 30 repeat every 23, and every node gets both.
STREAMS, UNSTREAMED, THREADS = 30, 16, 4
CHUNK_DELAY = 0.09  # eight lines: a stream of about 0.75 s, in the (0.5, 1.0] bucket


@pytest.fixture
def chat_stand_ins():
    """Three nodes answering /api/chat as Ollama does, streamed or not, generating a streamed answer at the same
    pace; the third answers every third streamed and every third unstreamed request 500 and breaks every third
    stream it starts in the middle."""
    routes = (OllamaChatRoute(chunk_delay=CHUNK_DELAY), OllamaChatRoute(chunk_delay=CHUNK_DELAY),
              OllamaChatRoute(chunk_delay=CHUNK_DELAY, fail_every=3, break_every=3))
    servers = [ReplayServer(ollama_routes()) for _ in routes]
    for server, route in zip(servers, routes, strict=True):
        server.routes["/api/chat"] = route
    yield list(zip(servers, routes, strict=True))
    for server in servers:
        server.stop()


def test_streamed_requests_are_counted_once_and_labelled_as_streams(start_exporter, redis_db, chat_stand_ins):
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"discover": False}))
    wait_for(lambda: value(exporter.scrape(), "sollol_events_subscribed") == 1, 10, what="subscribed")
    spec = {"nodes": [server.port for server, _ in chat_stand_ins], "requests": UNSTREAMED, "streams": STREAMS, "threads": THREADS,
            "redis_port": redis_db.port}
    result = drive("pool", spec, redis_db.url)
    routes = [route for _, route in chat_stand_ins]
    assert result["ok"] == UNSTREAMED  # retried on the next node
    assert result["streams_ok"] == sum(route.served_count(True, 200) for route in routes)  # a stream is not retried
    assert result["streams_failed"] == sum(route.served_count(True, 500) + route.served_count(True, "broken") for route in routes)
    failing = routes[2]
    assert failing.served_count(True, 500) >= 1 and failing.served_count(True, "broken") >= 1 and failing.served_count(False, 500) >= 1

    attempts = sum(sum(route.answers.values()) for route in routes)
    wait_for(lambda: sum(series(exporter.scrape(), "sollol_requests_total").values()) >= attempts, 20, what="every attempt counted")
    samples = exporter.scrape()
    assert sum(series(samples, "sollol_requests_total").values()) == attempts  # each failed stream once, not twice
    for server, route in chat_stand_ins:
        def requests(outcome, streaming, operation="chat", server=server):
            return value(samples, "sollol_requests_total", node=server.address, model="llama3.2:3b", operation=operation,
                         outcome=outcome, streaming=streaming) or 0

        def errors(reason, server=server):
            return value(samples, "sollol_request_errors_total", node=server.address, model="llama3.2:3b", reason=reason) or 0

        assert requests("success", "true") == route.served_count(True, 200), server.address
        assert requests("success", "false") == route.served_count(False, 200), server.address
        assert requests("error", "true", "unknown") == route.served_count(True, 500) + route.served_count(True, "broken"), server.address
        assert requests("error", "false", "unknown") == route.served_count(False, 500), server.address
        assert errors("http_5xx") == route.served_count(True, 500) + route.served_count(False, 500), server.address
        assert errors("connection") == route.served_count(True, "broken"), server.address  # closed in the middle of the stream
        for streaming, streamed in (("true", True), ("false", False)):
            assert (buckets_of(samples, node=server.address, streaming=streaming).get(float("inf")) or 0) == route.served_count(streamed, 200)
    streamed_p95 = histogram_quantile(0.95, summed(buckets_of(samples, node=server.address, streaming="true") for server, _ in chat_stand_ins))
    unstreamed_p95 = histogram_quantile(0.95, summed(buckets_of(samples, node=server.address, streaming="false") for server, _ in chat_stand_ins))
    assert 0.5 < streamed_p95 <= 1.0, f"p95 {streamed_p95:.3f} s for streams of about {8 * CHUNK_DELAY:.2f} s"
    assert unstreamed_p95 <= 0.1  # the same nodes' unstreamed answers, in a histogram of their own


def summed(bucket_sets) -> dict[float, float]:
    total: dict[float, float] = {}
    for buckets in bucket_sets:
        for bound, count in buckets.items():
            total[bound] = total.get(bound, 0.0) + count
    return total


@pytest.mark.llama
def test_llama_cpp_coordinator_requests_latency_and_lifecycle(start_exporter, redis_db, tiny_model, workers):
    from tests.support import llama

    port = free_port()
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
