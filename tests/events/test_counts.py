"""Counting SOLLOL's activity events, message by message, in the shapes docs/sollol.md#activity-channels documents."""

import json

import pytest

from sollol_exporter.addresses import Address
from sollol_exporter.events import OLLAMA, RPC, TRACES
from sollol_exporter.events.counts import BUCKETS, EventCounts
from sollol_exporter.labels import sanitize
from tests.support.sollol_events import interleaved, ollama_error, ollama_request, streamed_request, unary_request

NODE, OTHER_NODE, MODEL = "10.0.0.5:11434", "10.0.0.6:11434", "llama3.2:3b"


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
        ("10.0.0.5:11434", "llama3.2:3b", "chat", "success", "false"): 1,
        ("10.0.0.5:11434", "llama3.2:3b", "embed", "success", "false"): 1,
        ("10.0.0.5:11434", "llama3.2:3b", "unknown", "error", "false"): 2,  # SOLLOL's error events do not say
    }
    assert view.errors == {("10.0.0.5:11434", "llama3.2:3b", "http_5xx"): 1, ("10.0.0.5:11434", "llama3.2:3b", "timeout"): 1}
    chat = view.durations[("10.0.0.5:11434", "llama3.2:3b", "chat", "false")]
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
    assert view.requests == {("10.0.0.5:11434", "m", "chat", "success", "false"): 1}


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
    assert view.requests[("other", "other", "chat", "success", "false")] == 400 - 50
    assert view.folded["label_set"] > 0
    assert sum(view.requests.values()) == 400


def feed(counts, messages):
    for message in messages:
        assert counts.handle(OLLAMA, message), message


def outcomes(view, streaming):
    """{(node, outcome): count} of the requests labelled `streaming`."""
    found = {}
    for (node, _, _, outcome, flag), count in view.requests.items():
        if flag == streaming:
            found[(node, outcome)] = found.get((node, outcome), 0) + count
    return found


def test_a_stream_answered_with_an_error_status_is_counted_once_though_sollol_publishes_it_twice():
    counts = EventCounts()
    feed(counts, interleaved(streamed_request(NODE, MODEL, 1000.0, 12.0, "HTTP 500")))
    view = counts.view()
    assert view.errors == {(NODE, MODEL, "http_5xx"): 1}
    assert view.requests == {(NODE, MODEL, "unknown", "error", "true"): 1}
    assert view.received == {OLLAMA: 3} and view.invalid == {}  # the echo is a SOLLOL event, just not a second request


def test_an_async_request_answered_with_an_error_status_is_counted_once():
    counts = EventCounts()
    feed(counts, interleaved(unary_request(NODE, MODEL, 1000.0, 12.0, "HTTP 503", async_io=True)))
    assert counts.view().requests == {(NODE, MODEL, "unknown", "error", "false"): 1}
    assert counts.view().errors == {(NODE, MODEL, "http_5xx"): 1}


@pytest.mark.parametrize("failure, reason", [
    ("peer closed connection without sending complete message body (incomplete chunked read)", "connection"),
    ("All connection attempts failed", "connection"),
    ("timed out", "timeout"),
])
def test_a_stream_that_breaks_or_never_connects_is_one_error(failure, reason):
    counts = EventCounts()
    feed(counts, interleaved(streamed_request(NODE, MODEL, 1000.0, 800.0, failure)))
    assert counts.view().requests == {(NODE, MODEL, "unknown", "error", "true"): 1}
    assert counts.view().errors == {(NODE, MODEL, reason): 1}


@pytest.mark.parametrize("error", ["Streaming failed: HTTP 500 (retrying)", "streaming failed: HTTP 500", "Streaming failed: boom"])
def test_only_sollols_exact_echo_text_is_skipped(error):
    counts = EventCounts()
    counts.handle(OLLAMA, ollama_error(NODE, MODEL, error))
    assert sum(counts.view().requests.values()) == 1


def test_streamed_and_unary_latencies_land_in_their_own_histograms():
    counts = EventCounts()
    feed(counts, interleaved(
        streamed_request(NODE, MODEL, 1000.0, 40_000.0),  # a whole generation
        unary_request(NODE, MODEL, 1000.5, 300.0),
        unary_request(NODE, MODEL, 1001.0, 30.0, operation="embed"),
    ))
    view = counts.view()
    assert view.requests == {(NODE, MODEL, "chat", "success", "true"): 1, (NODE, MODEL, "chat", "success", "false"): 1,
                             (NODE, MODEL, "embed", "success", "false"): 1}
    streamed, unary = view.durations[(NODE, MODEL, "chat", "true")], view.durations[(NODE, MODEL, "chat", "false")]
    assert streamed.sum == pytest.approx(40.0) and streamed.counts[BUCKETS.index(60.0)] == 1
    assert unary.sum == pytest.approx(0.3) and unary.counts[BUCKETS.index(0.5)] == 1


def test_concurrent_streams_unary_requests_and_retries_on_several_nodes_are_each_counted_once_with_their_label():
    """Overlapping requests to two nodes and one model, their events interleaved as SOLLOL publishes them: streams
    that fail with a status, break mid-stream or succeed, unary requests that succeed or fail and are retried on
    the other node, started tens of milliseconds apart while others of the other kind are open on the same node."""
    counts = EventCounts()
    broken = "peer closed connection without sending complete message body (incomplete chunked read)"
    requests = [
        streamed_request(NODE, MODEL, 1000.000, 5_000.0),
        streamed_request(NODE, MODEL, 1000.020, 40.0, "HTTP 500"),
        unary_request(NODE, MODEL, 1000.030, 25.0, "HTTP 500"),        # ...retried on the other node:
        unary_request(OTHER_NODE, MODEL, 1000.056, 300.0),
        streamed_request(NODE, MODEL, 1000.070, 2_000.0, broken),
        unary_request(NODE, MODEL, 1000.090, 10.0, "[Errno 111] Connection refused"),
        unary_request(OTHER_NODE, MODEL, 1000.101, 200.0),             # its retry
        streamed_request(OTHER_NODE, MODEL, 1000.110, 60.0, "HTTP 502"),
        streamed_request(OTHER_NODE, MODEL, 1000.120, 900.0),
        unary_request(NODE, MODEL, 1000.200, 150.0),
        streamed_request(NODE, MODEL, 1000.210, 150.0, "HTTP 500"),
    ]
    feed(counts, interleaved(*requests))
    view = counts.view()
    assert outcomes(view, "true") == {(NODE, "success"): 1, (NODE, "error"): 3, (OTHER_NODE, "success"): 1, (OTHER_NODE, "error"): 1}
    assert outcomes(view, "false") == {(NODE, "success"): 1, (NODE, "error"): 2, (OTHER_NODE, "success"): 2}
    assert view.errors == {(NODE, MODEL, "http_5xx"): 3, (NODE, MODEL, "connection"): 2, (OTHER_NODE, MODEL, "http_5xx"): 1}
    assert counts.in_flight.size == 0


def test_an_error_whose_request_was_not_seen_counts_as_unstreamed():
    counts = EventCounts()
    counts.handle(OLLAMA, ollama_error(NODE, MODEL, "HTTP 500", 5.0, at=1000.0))
    counts.handle(OLLAMA, ollama_request(NODE, MODEL, streaming=True, at=2000.0))  # open, but started long after
    counts.handle(OLLAMA, ollama_error(NODE, MODEL, "HTTP 500", 5.0, at=1000.5))
    assert counts.view().requests == {(NODE, MODEL, "unknown", "error", "false"): 2}
    assert counts.in_flight.size == 1


def test_streams_that_never_end_do_not_grow_without_bound_nor_spoil_later_matches():
    counts = EventCounts()
    for index in range(2_000):  # abandoned by their consumers: no event after the request
        counts.handle(OLLAMA, ollama_request(NODE, MODEL, streaming=True, at=float(index)))
    assert counts.in_flight.size == 512  # per node and model, the oldest dropped first
    for index in range(30_000):
        counts.handle(OLLAMA, ollama_request(f"10.1.{index // 20 // 250}.{index // 20 % 250}:11434", MODEL, streaming=True, at=float(index)))
    assert 9_000 <= counts.in_flight.size <= 10_000
    assert len(counts.in_flight.open[("10.1.5.249:11434", MODEL)]) == 20  # the newest are kept
    feed(counts, interleaved(unary_request(NODE, MODEL, 50_000.0, 20.0, "HTTP 500")))
    assert counts.view().requests == {(NODE, MODEL, "unknown", "error", "false"): 1}


def test_the_streaming_label_survives_the_label_set_cap():
    counts = EventCounts(max_label_sets=4)
    for index in range(10):
        feed(counts, interleaved(streamed_request(f"10.0.0.{index}:11434", MODEL, 1000.0 + index, 10.0),
                                 unary_request(f"10.0.0.{index}:11434", MODEL, 1000.5 + index, 10.0)))
    view = counts.view()
    assert view.requests[("other", "other", "chat", "success", "true")] == 8
    assert view.requests[("other", "other", "chat", "success", "false")] == 8
    assert sum(view.requests.values()) == 20 and len(view.requests) == 6
    assert set(view.durations) == {key[:3] + key[4:] for key in view.requests}


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

    from sollol_exporter.cluster import ClusterState

    stopping, release = threading.Event(), threading.Event()

    class StopsWhenReleased:
        def stop(self):
            stopping.set()
            release.wait(30)

    cluster = ClusterState(3600, 60)
    cluster.subscribe(("a",), StopsWhenReleased)
    worker = threading.Thread(target=cluster.subscribe, args=(("b",), StopsWhenReleased))
    worker.start()
    try:
        assert stopping.wait(10), "the old subscriber was never stopped"
        # The old subscriber is still stopping: what a scrape's snapshot takes is free all the same. The timeout
        # only keeps a regression from hanging the run.
        assert cluster.lock.acquire(timeout=10), "the cluster lock is held while the old subscriber stops"
        cluster.lock.release()
    finally:
        release.set()
        worker.join(10)
    assert not worker.is_alive()


def test_a_batch_counts_as_its_messages_one_by_one_would():
    messages = [(OLLAMA, ollama("ollama_response", model="m", latency_ms=10.0, operation="chat")), (OLLAMA, b"{not json"),
                (RPC, json.dumps({"event_type": "rpc_error", "backend": "10.0.0.40:18080", "details": {"model": "m"}})),
                (OLLAMA, None)]  # a message too large to have been kept
    one_by_one, batched = EventCounts(), EventCounts()
    for channel, raw in messages:
        one_by_one.handle(channel, raw)
    assert batched.handle_many(messages) == 2
    first, second = one_by_one.view(), batched.view()
    assert second.received == {OLLAMA: 3, RPC: 1} and second.invalid == {OLLAMA: 2}
    assert (first.requests, first.coordinator_requests, first.invalid) == (second.requests, second.coordinator_requests, second.invalid)


def test_deeply_nested_events_are_invalid_and_shallow_ones_with_many_brackets_in_strings_are_not():
    counts = EventCounts()
    deep = json.dumps({"event_type": "ollama_response", "backend": NODE, "details": {"model": "m", "x": [[[[[[]]]]]] * 2}})
    for depth in (60, 70):
        nested = json.loads(deep)
        nested["details"]["x"] = json.loads("[" * depth + "]" * depth)
        counts.handle(OLLAMA, json.dumps(nested))
    counts.handle(OLLAMA, ollama("ollama_response", model="[{" * 100, latency_ms=1.0, operation="chat"))
    view = counts.view()
    assert view.invalid == {OLLAMA: 1}  # only the 70 levels (past the limit of 64)
    assert view.requests[(NODE, sanitize("[{" * 100, 96), "chat", "success", "false")] == 1
    assert view.requests[(NODE, "m", "unknown", "success", "false")] == 1  # the 60 levels


def test_a_lost_subscription_is_counted_once_and_only_for_the_current_subscriber():
    counts = EventCounts()
    old = counts.new_generation()
    new = counts.new_generation()
    counts.set_subscribed(True, new)
    counts.lose_subscription(old)  # a replaced subscriber's connection ending is no loss
    assert counts.view().subscription_losses == 0 and counts.view().subscribed
    counts.lose_subscription(new)
    assert counts.view().subscription_losses == 1 and not counts.view().subscribed
