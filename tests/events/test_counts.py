"""Counting SOLLOL's activity events, message by message, in the shapes sollol-data §6 and §8 document."""

import json

import pytest

from sollol_exporter.events import OLLAMA, RPC, TRACES
from sollol_exporter.events.counts import BUCKETS, EventCounts
from sollol_exporter.labels import Address


def ollama(event_type, node="10.0.0.5:11434", **details):
    return json.dumps({"timestamp": 1731600001.52, "backend": node, "event_type": event_type, "severity": "info", "details": details})


def test_responses_and_errors_per_node_model_and_operation():
    counts = EventCounts()
    counts.handle(OLLAMA, ollama("ollama_request", model="llama3.2:3b", operation="chat"))
    counts.handle(OLLAMA, ollama("ollama_response", model="llama3.2:3b", latency_ms=842.1, status_code=200, operation="chat"))
    counts.handle(OLLAMA, ollama("ollama_response", model="llama3.2:3b", latency_ms=30.0, status_code=200, operation="/api/embed"))
    counts.handle(OLLAMA, ollama("ollama_error", model="llama3.2:3b", error="HTTP 503", latency_ms=12.0))
    counts.handle(OLLAMA, ollama("ollama_error", model="llama3.2:3b", error="ReadTimeout: timed out", latency_ms=300000.0))
    view = counts.view()
    assert view.requests == {
        ("10.0.0.5:11434", "llama3.2:3b", "chat", "success"): 1,
        ("10.0.0.5:11434", "llama3.2:3b", "embed", "success"): 1,
        ("10.0.0.5:11434", "llama3.2:3b", "unknown", "error"): 2,  # SOLLOL's error events do not say
    }
    assert view.errors == {("10.0.0.5:11434", "llama3.2:3b", "http_5xx"): 1, ("10.0.0.5:11434", "llama3.2:3b", "timeout"): 1}
    chat = view.durations[("10.0.0.5:11434", "llama3.2:3b", "chat")]
    assert sum(chat.counts) == 1 and chat.sum == pytest.approx(0.8421)
    assert chat.counts[BUCKETS.index(1.0)] == 1  # 0.842 s falls in the le="1.0" bucket
    assert view.received == {OLLAMA: 5} and view.invalid == {}


@pytest.mark.parametrize("error, reason", [
    ("HTTP 404", "http_4xx"), ("HTTP 500", "http_5xx"), ("All connection attempts failed", "connection"),
    ("[Errno 111] Connection refused", "connection"), ("Request timed out", "timeout"), ("boom", "other"), (None, "other"),
])
def test_error_reasons_are_a_small_fixed_set(error, reason):
    counts = EventCounts()
    counts.handle(OLLAMA, ollama("ollama_error", model="m", error=error))
    assert list(counts.view().errors) == [("10.0.0.5:11434", "m", reason)]


def test_coordinator_events_in_both_shapes_use_one_coordinator_label():
    counts = EventCounts()
    names = {Address("10.0.0.40", 18080): "main"}
    shape_1a = {"timestamp": 1.0, "backend": "10.0.0.40:18080", "event_type": "rpc_response", "severity": "info",
                "details": {"model": "llama3.1:70b", "latency_ms": 5234.7, "rpc_backends": 2}}
    shape_2 = {"timestamp": 2.0, "event_type": "rpc_response", "backend": "http://10.0.0.40:18080/v1/chat/completions", "trace_id": "5b0e",
               "details": {"model": "llama3.1:70b", "latency_ms": 1000.0, "completion_tokens": 128}}
    failed = {"event": "trace_failed", "trace": {"model": "llama3.1:70b", "coordinator_url": "http://10.0.0.40:18080", "status": "failed"}}
    completed = {"event": "trace_complete", "trace": {"model": "llama3.1:70b", "coordinator_url": "http://10.0.0.40:18080", "completion_tokens": 128}}
    counts.handle(RPC, json.dumps(shape_1a), names)
    counts.handle(RPC, json.dumps(shape_2), names)
    counts.handle(TRACES, json.dumps(completed), names)  # counted through the rpc_response above
    counts.handle(TRACES, json.dumps(failed), names)
    view = counts.view()
    assert view.coordinator_requests == {("main", "llama3.1:70b", "success"): 2, ("main", "llama3.1:70b", "error"): 1}
    assert view.coordinator_tokens == {("main", "llama3.1:70b"): 128}
    assert sum(view.coordinator_durations[("main", "llama3.1:70b")].counts) == 2


def test_lifecycle_and_heartbeats():
    counts = EventCounts()
    for kind, details in (
        ("coordinator_start", {"coordinator": "127.0.0.1:18080", "model": "tiny.gguf"}),
        ("coordinator_model_load", {"coordinator": "127.0.0.1:18080"}),
        ("coordinator_stop", {"reason": "Health check failed - automatic restart", "restart_attempt": 1}),
        ("coordinator_stop", {"reason": "Max restarts exceeded"}),
        ("rpc_backend_connect", {"rpc_backends": 2, "rpc_addresses": ["a:1", "b:2"], "type": "heartbeat"}),
    ):
        counts.handle(RPC, json.dumps({"timestamp": 1.0, "backend": "127.0.0.1:18080", "event_type": kind, "details": details}))
    counts.handle(RPC, json.dumps({"timestamp": 1.0, "backend": "rpc_registry", "event_type": "rpc_backend_connect",
                                            "details": {"total_configured": 3, "total_active": 2}}))
    view = counts.view()
    assert view.lifecycle == {("127.0.0.1:18080", "start"): 1, ("127.0.0.1:18080", "model_load"): 1,
                              ("127.0.0.1:18080", "restart"): 1, ("127.0.0.1:18080", "stop"): 1}
    assert view.workers_active == {"127.0.0.1:18080": 2, "rpc_registry": 2}
    assert view.workers_configured == {"rpc_registry": 3}


@pytest.mark.parametrize("raw", [
    b"not json", b"[" * 30_000 + b"]" * 30_000, b"x" * 70_000, b"[1, 2]", b"{}",
    json.dumps({"event_type": "ollama_response", "backend": "not a host!", "details": {}}).encode(),
    json.dumps({"event_type": "ollama_response", "backend": None}).encode(),
    json.dumps({"event_type": "something_else", "backend": "h:1"}).encode(),
    "\udcff".encode("utf-8", "surrogatepass"),
])
def test_a_bad_message_costs_itself_only(raw):
    counts = EventCounts()
    counts.handle(OLLAMA, raw)
    counts.handle(OLLAMA, ollama("ollama_response", model="m", latency_ms=10.0, operation="chat"))
    view = counts.view()
    assert view.invalid == {OLLAMA: 1}
    assert view.requests == {("10.0.0.5:11434", "m", "chat", "success"): 1}


def test_label_values_past_the_cap_are_folded_and_counted():
    counts = EventCounts(max_nodes=3, max_models=5)
    for index in range(10_000):
        counts.handle(OLLAMA, ollama("ollama_response", node=f"10.0.{index // 256 % 256}.{index % 256}:11434",
                                             model=f"model-{index}", latency_ms=1.0, operation="chat"))
    view = counts.view()
    assert len({key[0] for key in view.requests}) == 4  # three nodes and "other"
    assert len({key[1] for key in view.requests}) == 6
    assert len(view.requests) <= 4 * 6
    assert view.folded["model"] == 10_000 - 5
    assert sum(view.requests.values()) == 10_000


def test_label_sets_are_capped_per_family_not_only_per_label():
    counts = EventCounts(max_nodes=100, max_models=100, max_label_sets=50)
    for node in range(20):
        for model in range(20):
            counts.handle(OLLAMA, ollama("ollama_response", node=f"10.0.0.{node}:11434", model=f"m{model}", latency_ms=1.0, operation="chat"))
    view = counts.view()
    assert len(view.requests) == 51 and len(view.durations) == 51  # 50 label sets and the folded one
    assert view.requests[("other", "other", "chat", "success")] == 400 - 50
    assert view.folded["label_set"] > 0
    assert sum(view.requests.values()) == 400


@pytest.mark.parametrize("details", [{"latency_ms": 1e308}, {"latency_ms": 2e7}])
def test_implausible_latencies_are_invalid_not_infinite(details):
    counts = EventCounts()
    counts.handle(OLLAMA, ollama("ollama_response", model="m", operation="chat", **details))
    assert counts.view().invalid == {OLLAMA: 1} and counts.view().durations == {}


def test_implausible_token_counts_are_invalid():
    counts = EventCounts()
    for tokens in (1e308, 1e308, -5):
        counts.handle(RPC, json.dumps({"event_type": "rpc_response", "backend": "10.0.0.40:18080",
                                       "details": {"model": "m", "latency_ms": 10.0, "completion_tokens": tokens}}))
    assert counts.view().coordinator_tokens == {} and counts.view().invalid == {RPC: 3}


def test_a_replaced_subscriber_counts_nothing_and_cannot_unset_subscribed():
    counts = EventCounts()
    old = counts.new_generation()
    new = counts.new_generation()
    counts.set_subscribed(True, new)
    assert counts.handle(OLLAMA, ollama("ollama_response", model="m", latency_ms=1.0), generation=old) is False
    counts.set_subscribed(False, old)
    view = counts.view()
    assert view.subscribed is True and view.requests == {} and view.received == {}
    assert counts.handle(OLLAMA, ollama("ollama_response", model="m", latency_ms=1.0), generation=new) is True


def test_stopping_the_old_subscriber_does_not_hold_the_cluster_lock():
    import threading
    import time

    from sollol_exporter.cluster import ClusterState

    class SlowToStop:
        def stop(self):
            time.sleep(1.0)

    cluster = ClusterState(3600, 60)
    cluster.subscribe(("a",), SlowToStop)
    worker = threading.Thread(target=cluster.subscribe, args=(("b",), SlowToStop))
    worker.start()
    time.sleep(0.1)
    started = time.monotonic()
    with cluster.lock:  # what a scrape's snapshot takes
        waited = time.monotonic() - started
    worker.join()
    assert waited < 0.5
