"""SOLLOL's activity events, as a running SOLLOL publishes them (docs/sollol.md#activity-channels), for tests that need
request-level series in Prometheus: the builders give one message each, `ActivityPublisher` keeps publishing a
steady mix of them from a thread, so that rates, ratios and quantiles over a few seconds are non-zero."""

from __future__ import annotations

import json
import threading
import time

OLLAMA_CHANNEL = "sollol:dashboard:ollama:activity"
RPC_CHANNEL = "sollol:dashboard:rpc:activity"
TRACES_CHANNEL = "sollol:traces"


def ollama_request(node: str, model: str, operation: str = "chat", *, streaming: bool = False, async_io: bool = False,
                   at: float | None = None) -> str:
    """OllamaPool's request event: `streaming: true` from _make_streaming_request, `async_io: true` from
    _make_request_async, neither from _make_request."""
    details = {"model": model, "operation": operation, "priority": 5}
    if streaming:
        details["streaming"] = True
    if async_io:
        details["async_io"] = True
    return json.dumps({"timestamp": time.time() if at is None else at, "backend": node, "event_type": "ollama_request",
                       "severity": "info", "details": details})


def ollama_response(node: str, model: str, latency_ms: float, operation: str = "chat", *, streaming: bool = False,
                    async_io: bool = False, at: float | None = None) -> str:
    details = {"model": model, "latency_ms": latency_ms, "status_code": 200, "operation": operation}
    if streaming:
        details["streaming"] = True
    if async_io:
        details["async_io"] = True
    return json.dumps({"timestamp": time.time() if at is None else at, "backend": node, "event_type": "ollama_response",
                       "severity": "warning" if latency_ms > 10_000 else "info", "details": details})


def ollama_error(node: str, model: str, error: str, latency_ms: float = 3.0, *, at: float | None = None) -> str:
    """Never says whether the request was streamed, nor its operation."""
    return json.dumps({"timestamp": time.time() if at is None else at, "backend": node, "event_type": "ollama_error", "severity": "error",
                       "details": {"model": model, "error": error, "latency_ms": latency_ms}})


# What SOLLOL 0.9.66's OllamaPool publishes for one request, in order, as (timestamp, message): `started` is its
# start_time, the events follow a few tens of microseconds after the moment they describe. `failure` is None for
# a 200, "HTTP nnn" for an error status, or the text of the exception SOLLOL caught (connection refused, a read
# timeout, the node closing the connection in the middle of a stream).
_LOGGED = 0.00003


def _is_status(failure: str) -> bool:
    return failure.startswith("HTTP ") and failure[5:].isdigit()


def streamed_request(node: str, model: str, started: float, latency_ms: float, failure: str | None = None,
                     operation: str = "chat") -> list[tuple[float, str]]:
    """_make_streaming_request: an error status is published twice, as "HTTP nnn" and then, from the outer
    `except`, as the RuntimeError just raised, "Streaming failed: HTTP nnn"; any other failure once."""
    ended = started + latency_ms / 1000
    events = [(started + _LOGGED, ollama_request(node, model, operation, streaming=True, at=started + _LOGGED))]
    if failure is None:
        return [*events, (ended + _LOGGED, ollama_response(node, model, latency_ms, operation, streaming=True, at=ended + _LOGGED))]
    events.append((ended + _LOGGED, ollama_error(node, model, failure, latency_ms, at=ended + _LOGGED)))
    if _is_status(failure):
        echo_ms = latency_ms + 0.2
        echo_at = started + echo_ms / 1000 + _LOGGED
        events.append((echo_at, ollama_error(node, model, f"Streaming failed: {failure}", echo_ms, at=echo_at)))
    return events


def unary_request(node: str, model: str, started: float, latency_ms: float, failure: str | None = None,
                  operation: str = "chat", async_io: bool = False) -> list[tuple[float, str]]:
    """_make_request (one attempt; a retry on the next node is another call), or with `async_io`
    _make_request_async, which like a stream publishes an error status twice ("Request failed: HTTP nnn")."""
    ended = started + latency_ms / 1000
    events = [(started + _LOGGED, ollama_request(node, model, operation, async_io=async_io, at=started + _LOGGED))]
    if failure is None:
        return [*events, (ended + _LOGGED, ollama_response(node, model, latency_ms, operation, async_io=async_io, at=ended + _LOGGED))]
    events.append((ended + _LOGGED, ollama_error(node, model, failure, latency_ms, at=ended + _LOGGED)))
    if async_io and _is_status(failure):
        echo_ms = latency_ms + 0.2
        echo_at = started + echo_ms / 1000 + _LOGGED
        events.append((echo_at, ollama_error(node, model, f"Request failed: {failure}", echo_ms, at=echo_at)))
    return events


def interleaved(*requests: list[tuple[float, str]]) -> list[str]:
    """The messages of requests that ran at the same time, in the order SOLLOL's observer publishes them (the
    order they were logged: one queue, one publishing thread)."""
    return [message for _, message in sorted((event for request in requests for event in request), key=lambda event: event[0])]


def rpc_response_traced(coordinator_url: str, model: str, latency_ms: float, completion_tokens: int) -> str:
    """RayHybridRouter's shape: the full request URL, completion tokens, no severity."""
    return json.dumps({"timestamp": time.time(), "event_type": "rpc_response", "backend": f"{coordinator_url}/v1/chat/completions",
                       "trace_id": "5b0e9c1e", "details": {"model": model, "rpc_backends_used": 2, "status": "success",
                                                           "latency_ms": latency_ms, "completion_tokens": completion_tokens}})


def rpc_event(kind: str, backend: str, severity: str = "info", **details) -> str:
    """NetworkObserver's shape (rpc_response, rpc_error, coordinator_*, rpc_backend_connect): `backend` is the
    coordinator's "h:p" (or "rpc_registry" for the registry's heartbeats)."""
    return json.dumps({"timestamp": time.time(), "backend": backend, "event_type": kind, "severity": severity, "details": details})


def trace(event: str, coordinator_url: str, model: str, **fields) -> str:
    return json.dumps({"event": event, "trace": {"trace_id": "5b0e9c1e", "model": model, "coordinator_url": coordinator_url,
                                                 "start_time": time.time(), **fields}})


class ActivityPublisher:
    """Publishes, every `period` seconds, what a busy SOLLOL would: successful requests to two Ollama nodes (one
    fast model, one slow), HTTP 500s and timeouts, coordinator requests in both shapes with completion tokens, a
    coordinator error, heartbeats, coordinator restarts, traces and now and then a malformed message. One
    `coordinator_model_load` is published once, first: its counter never increases afterwards."""

    def __init__(self, client, fast_node: str, slow_node: str, coordinator: str, model: str = "llama3.2:3b",
                 slow_model: str = "qwen2.5:7b", coordinator_model: str = "tiny.gguf", period: float = 0.25):
        self.client, self.period = client, period
        self.fast_node, self.slow_node, self.coordinator = fast_node, slow_node, coordinator
        self.model, self.slow_model, self.coordinator_model = model, slow_model, coordinator_model
        self.published = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ActivityPublisher:
        self._publish(RPC_CHANNEL, rpc_event("coordinator_model_load", self.coordinator, model=self.coordinator_model,
                                             coordinator=self.coordinator, layers_offloaded=7))
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _publish(self, channel: str, message: str) -> None:
        self.client.publish(channel, message)
        self.published += 1

    def tick(self, turn: int) -> None:
        url = f"http://{self.coordinator}"
        self._publish(OLLAMA_CHANNEL, ollama_response(self.fast_node, self.model, 120.0 + 40.0 * (turn % 20)))
        self._publish(OLLAMA_CHANNEL, ollama_response(self.slow_node, self.slow_model, 2_000.0 + 150.0 * (turn % 15), "generate"))
        self._publish(RPC_CHANNEL, rpc_response_traced(url, self.coordinator_model, 300.0 + 60.0 * (turn % 20), 8 + turn % 25))
        if turn % 4 == 0:
            self._publish(OLLAMA_CHANNEL, ollama_error(self.slow_node, self.slow_model, "HTTP 500"))
            self._publish(TRACES_CHANNEL, trace("trace_complete", url, self.coordinator_model, status="completed", completion_tokens=16))
        if turn % 7 == 0:
            self._publish(OLLAMA_CHANNEL, ollama_error(self.fast_node, self.model, "Read timed out. (read timeout=300)", 30_000.0))
        if turn % 5 == 0:
            self._publish(RPC_CHANNEL, rpc_event("rpc_response", self.coordinator, model=self.coordinator_model, latency_ms=900.0, rpc_backends=2))
        if turn % 10 == 0:
            self._publish(RPC_CHANNEL, rpc_event("rpc_error", self.coordinator, "error", model=self.coordinator_model, error="HTTP 503", rpc_backends=2))
            self._publish(OLLAMA_CHANNEL, "{not json")
        if turn % 8 == 0:
            self._publish(RPC_CHANNEL, rpc_event("rpc_backend_connect", self.coordinator, model=self.coordinator_model, rpc_backends=2,
                                                 type="heartbeat", total_configured=3, total_active=2, restart_count=1))
        if turn % 20 == 0:
            self._publish(RPC_CHANNEL, rpc_event("coordinator_stop", self.coordinator, "warning", coordinator=self.coordinator,
                                                 reason="Health check failed - automatic restart", restart_attempt=1))
            self._publish(RPC_CHANNEL, rpc_event("coordinator_start", self.coordinator, coordinator=self.coordinator,
                                                 model=self.coordinator_model, rpc_backends=2, ctx_size=512))

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            self.tick(turn)
            turn += 1
            self._stop.wait(self.period)
