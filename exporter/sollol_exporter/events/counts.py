"""Counting SOLLOL's activity events (docs/sollol.md#activity-channels).

Which message counts as what:
  ollama channel   ollama_response -> a successful request to a node, its latency observed;
                   ollama_error    -> a failed request, with a reason (http_5xx, http_4xx, timeout, connection, other).
  rpc channel      rpc_response    -> a successful coordinator request (the RayHybridRouter shape names the full
                                      URL and carries completion_tokens); rpc_error -> a failed one;
                   coordinator_start / coordinator_stop / coordinator_model_load -> lifecycle events (a stop
                                      that SOLLOL makes to restart the process counts as "restart");
                   rpc_backend_connect -> active and configured worker counts.
  traces channel   trace_failed    -> a failed coordinator request (RayHybridRouter publishes no rpc_error);
                   trace_complete is not counted: the rpc_response published with it already was.
rpc_request events are counted as received only.

Streamed requests (sollol.pool.OllamaPool._make_streaming_request, SOLLOL 0.9.66). Every request, streamed or not,
is labelled streaming "true" or "false"; a stream's latency is its whole generation, so the two are kept apart.
  - ollama_request and ollama_response say `streaming: true` for a stream (absent otherwise); ollama_request is
    not counted but opens the request, and the response ends it (in_flight.py).
  - ollama_error never says. It is labelled by the open request it ends: same node and model, the start its
    timestamp minus latency_ms implies nearest the request's timestamp. With no such request seen (the exporter
    subscribed later, or SOLLOL sampled the request event away), it counts as streaming "false".
  - A stream answered with an HTTP error status publishes two ollama_error events: "HTTP 500", then from the
    function's outer `except`, the RuntimeError it has just raised, "Streaming failed: HTTP 500".
    OllamaPool._make_request_async does the same with "Request failed: HTTP 500". The second one of each pair (an
    error that is exactly "Streaming failed: HTTP nnn" or "Request failed: HTTP nnn", a text nothing else in
    SOLLOL writes as an error) is an echo: received, not counted. Both events name the same node and model
    and are published by one thread, one after the other, so no other request can make an echo appear
    without its original.
  - A stream that fails before or while it is read (connection refused, timeout, the node closing the
    connection mid-stream) publishes one ollama_error with the exception's text, and is counted once.
  - A stream its consumer abandons publishes nothing after ollama_request; a node that reports an error inside a
    200 stream (an `{"error": ...}` line) is a success to SOLLOL, and so to the exporter.

Node and model names come from outside: each label keeps at most a configured number of distinct values, later
ones are folded into "other" and the folds are counted.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from sollol_exporter.addresses import Address, parse_address
from sollol_exporter.events import OLLAMA, RPC, TRACES
from sollol_exporter.events.in_flight import InFlight
from sollol_exporter.labels import OTHER, sanitize
from sollol_exporter.peers import OLLAMA_PORT
from sollol_exporter.values import MAX_EVENT_BYTES, MAX_JSON_DEPTH, MAX_MILLISECONDS, BadValue, decode_json, mapping, number, text

# LLM requests: tens of milliseconds (embeddings, cache hits) to several minutes (long generations on CPU).
BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
OPERATIONS = ("chat", "generate", "embed", "embeddings", "completion", "other")  # plus "unknown": not said
REASONS = ("http_5xx", "http_4xx", "timeout", "connection", "other")
LIFECYCLE = {"coordinator_start": "start", "coordinator_stop": "stop", "coordinator_model_load": "model_load"}
SUCCESS, ERROR = "success", "error"
_HTTP_STATUS = re.compile(r"\bHTTP\s*([1-5])\d\d\b")
_ECHO = re.compile(r"(?:Streaming|Request) failed: HTTP \d{3}")  # repeats the "HTTP nnn" error just published


class Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds

    def copy(self) -> Histogram:
        other = Histogram()
        other.counts, other.sum = list(self.counts), self.sum
        return other


class LabelCap:
    """At most `limit` distinct values; the rest become "other" and are counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.values: set[str] = set()
        self.folded = 0

    def __call__(self, value: str) -> str:
        if value in self.values:
            return value
        if len(self.values) < self.limit:
            self.values.add(value)
            return value
        self.folded += 1
        return OTHER


@dataclass(frozen=True)
class EventsView:
    """A copy of the counts for one scrape."""

    subscribed: bool
    subscription_losses: float
    received: dict[str, float]
    invalid: dict[str, float]
    last_received: dict[str, float]
    folded: dict[str, float]
    requests: dict[tuple[str, str, str, str, str], float]  # node, model, operation, outcome, streaming
    durations: dict[tuple[str, str, str, str], Histogram]  # node, model, operation, streaming
    errors: dict[tuple[str, str, str], float]
    coordinator_requests: dict[tuple[str, str, str], float]
    coordinator_durations: dict[tuple[str, str], Histogram]
    coordinator_tokens: dict[tuple[str, str], float]
    lifecycle: dict[tuple[str, str], float]
    workers_active: dict[str, float]
    workers_configured: dict[str, float]


@dataclass(frozen=True)
class Update:
    """What one event counts, worked out without touching the counts (labels before their caps)."""

    kind: str  # request_start | request | coordinator_request | lifecycle | heartbeat | none
    target: str = ""  # node or coordinator
    named: bool = False  # the coordinator is a configured one: its label is not capped
    model: str = ""
    operation: str = ""
    outcome: str = ""
    seconds: float | None = None
    reason: str = ""
    tokens: float | None = None
    event: str = ""
    active: float | None = None
    configured: float | None = None
    streaming: bool | None = None  # None: the event does not say
    started: float | None = None  # when the request started, on SOLLOL's clock


# Larger values are not a measurement: an event that claims one is invalid (a single 1e308 would pin a counter at +Inf).
MAX_TOKENS = 1e7
MAX_WORKERS = 10_000  # RPC workers a coordinator's heartbeat may report


def interpret(channel: str, raw: bytes | str | None, names: dict[Address, str]) -> Update:
    """The update one message from a channel of kind `channel` makes; BadValue if it is not a SOLLOL event.
    None stands for a message too large to have been kept."""
    if raw is None:
        raise BadValue(f"event over {MAX_EVENT_BYTES} bytes")
    size = len(raw)
    if size > MAX_EVENT_BYTES:
        raise BadValue(f"event of {size} bytes")
    event = _decode(raw)
    if not isinstance(event, dict):
        raise BadValue("event is not a JSON object")
    if channel == OLLAMA:
        return _ollama(event)
    if channel == RPC:
        return _rpc(event, names)
    if channel == TRACES:
        return _trace(event, names)
    raise BadValue(f"no channel of kind {channel!r}")


def _decode(raw: bytes | str):
    """decode_json, without its depth scan (most of the cost of an event) where the brackets cannot nest that deep."""
    if isinstance(raw, bytes) and raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise BadValue("event: invalid JSON") from None
    return decode_json(raw, "event")


# SOLLOL repeats the same few node and model names in every event: each is cleaned once. Bounded, so names that
# keep changing cost only the cache's churn.
@lru_cache(maxsize=1024)
def _cached_address(value: str, default_port: int) -> Address:
    return parse_address(value, default_port)


def _address(value, default_port: int) -> Address:
    return _cached_address(value, default_port) if isinstance(value, str) else parse_address(value, default_port)


@lru_cache(maxsize=1024)
def _clean_model(name: str) -> str:
    return sanitize(name, 96) or "unknown"


def _model(details: dict) -> str:
    return _clean_model(text(details.get("model")) or "unknown")


def _ollama(event: dict) -> Update:
    kind = text(event.get("event_type"))
    details = mapping(event.get("details"))
    if kind not in ("ollama_request", "ollama_response", "ollama_error"):
        raise BadValue(f"unknown event type {kind!r}")
    node = str(_address(event.get("backend"), OLLAMA_PORT))
    timestamp = number(event.get("timestamp"))
    if kind == "ollama_request":
        return Update("request_start", node, model=_model(details), streaming=details.get("streaming") is True, started=timestamp)
    seconds = _seconds(details.get("latency_ms"))
    started = timestamp - seconds if timestamp is not None and seconds is not None else None
    model, operation = _model(details), _operation(details.get("operation"))
    if kind == "ollama_response":
        return Update("request", node, model=model, operation=operation, outcome=SUCCESS, seconds=seconds, started=started,
                      streaming=details.get("streaming") is True)
    error = details.get("error")
    if isinstance(error, str) and _ECHO.fullmatch(error):
        return Update("none")
    return Update("request", node, model=model, operation=operation, outcome=ERROR, seconds=seconds, started=started, reason=_reason(error))


def _coordinator(backend, names: dict[Address, str]) -> tuple[str, bool]:
    if backend == "rpc_registry":
        return "rpc_registry", True
    address = _address(backend, 80)
    return (names[address], True) if address in names else (str(address), False)


def _rpc(event: dict, names: dict[Address, str]) -> Update:
    kind = text(event.get("event_type")) or text(event.get("event"))
    details = mapping(event.get("details"))
    if kind in ("rpc_request", "rpc_backend_disconnect"):
        return Update("none")
    if kind in ("rpc_response", "rpc_error"):
        coordinator, named = _coordinator(event.get("backend"), names)
        tokens = number(details.get("completion_tokens"))
        if tokens is not None and not 0 <= tokens <= MAX_TOKENS:
            raise BadValue(f"completion_tokens {tokens!r}")
        return Update("coordinator_request", coordinator, named, _model(details), outcome=SUCCESS if kind == "rpc_response" else ERROR,
                      seconds=_seconds(details.get("latency_ms")), tokens=tokens)
    if kind in LIFECYCLE:
        coordinator, named = _coordinator(details.get("coordinator") or event.get("backend"), names)
        name = LIFECYCLE[kind]
        reason = (text(details.get("reason")) or "").lower()
        if name == "stop" and ("restart_attempt" in details or "automatic restart" in reason):
            name = "restart"
        return Update("lifecycle", coordinator, named, event=name)
    if kind == "rpc_backend_connect":
        coordinator, named = _coordinator(event.get("backend"), names)
        active = _workers(details, "total_active")
        if active is None:
            active = _workers(details, "rpc_backends")
        if active is None and isinstance(details.get("rpc_addresses"), list):
            active = float(min(len(details["rpc_addresses"]), MAX_WORKERS))
        return Update("heartbeat", coordinator, named, active=active, configured=_workers(details, "total_configured"))
    raise BadValue(f"unknown event type {kind!r}")


def _trace(event: dict, names: dict[Address, str]) -> Update:
    kind = text(event.get("event"))
    if kind in ("trace_start", "trace_complete"):
        return Update("none")
    if kind != "trace_failed":
        raise BadValue(f"unknown trace event {kind!r}")
    trace = mapping(event.get("trace"))
    coordinator, named = _coordinator(trace.get("coordinator_url"), names)
    return Update("coordinator_request", coordinator, named, _model(trace), outcome=ERROR)


@dataclass
class EventCounts:
    """Everything counted from the events; lives in the cluster state, so reloads and Redis outages keep it.

    Each label keeps at most max_nodes / max_models values, and each family at most max_label_sets label sets:
    past those, node and model become "other" (the product of the label caps alone would allow a million series)."""

    max_nodes: int = 100
    max_models: int = 100
    max_label_sets: int = 1000
    subscribed: bool = False
    subscription_losses: float = 0.0  # established subscriptions that ended while the exporter ran on
    generation: int = 0  # the subscriber whose messages count; a replaced one's late messages are ignored
    received: dict[str, float] = field(default_factory=dict)
    invalid: dict[str, float] = field(default_factory=dict)
    last_received: dict[str, float] = field(default_factory=dict)
    requests: dict[tuple[str, str, str, str, str], float] = field(default_factory=dict)
    durations: dict[tuple[str, str, str, str], Histogram] = field(default_factory=dict)
    errors: dict[tuple[str, str, str], float] = field(default_factory=dict)
    coordinator_requests: dict[tuple[str, str, str], float] = field(default_factory=dict)
    coordinator_durations: dict[tuple[str, str], Histogram] = field(default_factory=dict)
    coordinator_tokens: dict[tuple[str, str], float] = field(default_factory=dict)
    lifecycle: dict[tuple[str, str], float] = field(default_factory=dict)
    workers_active: dict[str, float] = field(default_factory=dict)
    workers_configured: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        # Told of every configured coordinator an event is about (not the RPC registry's: it runs without one).
        self.announce: Callable[[str], None] | None = None
        self.nodes = LabelCap(self.max_nodes)
        self.models = LabelCap(self.max_models)
        self.coordinators = LabelCap(self.max_nodes)
        self.folded_sets = 0
        self.in_flight = InFlight()  # keyed by node and model before their caps

    def configure(self, max_nodes: int, max_models: int, max_label_sets: int | None = None) -> None:
        with self.lock:
            for cap, limit in ((self.nodes, max_nodes), (self.models, max_models), (self.coordinators, max_nodes)):
                cap.limit = limit
            if max_label_sets is not None:
                self.max_label_sets = max_label_sets

    def new_generation(self) -> int:
        with self.lock:
            self.generation += 1
            self.subscribed = False
            return self.generation

    def set_subscribed(self, subscribed: bool, generation: int | None = None) -> None:
        with self.lock:
            if generation is None or generation == self.generation:
                self.subscribed = subscribed

    def lose_subscription(self, generation: int | None = None) -> None:
        """An established subscription ended (Redis closed it, or it failed): what was published until the next
        one subscribes is not counted."""
        with self.lock:
            if generation is None or generation == self.generation:
                self.subscribed = False
                self.subscription_losses += 1

    def handle(self, channel: str, raw: bytes | str | None, coordinator_names: dict[Address, str] | None = None,
               generation: int | None = None) -> bool:
        """Count one message from a channel of kind `channel` (ollama, rpc, traces); False if it was invalid
        (counted as such, nothing else changed) or came from a subscriber that has been replaced."""
        return self.handle_many([(channel, raw)], coordinator_names, generation) == 1

    def handle_many(self, messages: Iterable[tuple[str, bytes | str | None]], coordinator_names: dict[Address, str] | None = None,
                    generation: int | None = None) -> int:
        """Count (channel kind, message) pairs, read outside the lock and counted under one hold of it; how many
        were valid (0 for a subscriber that has been replaced)."""
        names = coordinator_names or {}
        updates: list[tuple[str, Update | None]] = []
        for channel, raw in messages:  # outside the lock: scrapes wait for it
            try:
                updates.append((channel, interpret(channel, raw, names)))
            except (BadValue, ValueError):
                updates.append((channel, None))
        now = time.time()
        valid = 0
        with self.lock:
            if generation is not None and generation != self.generation:
                return 0
            for channel, update in updates:
                self.received[channel] = self.received.get(channel, 0.0) + 1
                self.last_received[channel] = now
                if update is None:
                    self.invalid[channel] = self.invalid.get(channel, 0.0) + 1
                else:
                    self._apply(update)
                    valid += 1
        return valid

    def _key(self, table: dict, key: tuple, folded: tuple) -> tuple:
        """`key`, or `folded` once the family holds max_label_sets label sets."""
        if key in table or len(table) < self.max_label_sets:
            return key
        self.folded_sets += 1
        return folded

    def _apply(self, u: Update) -> None:
        if u.kind in ("coordinator_request", "lifecycle", "heartbeat") and u.named and u.target != "rpc_registry" and self.announce:
            self.announce(u.target)
        if u.kind == "request_start":
            self.in_flight.start((u.target, u.model), u.started, bool(u.streaming))
        elif u.kind == "request":
            streamed = self.in_flight.finish((u.target, u.model), u.started, u.streaming)
            if u.streaming is not None:  # a response says; an error is known by its request, if that was seen
                streamed = u.streaming
            streaming = "true" if streamed else "false"
            node, model = self.nodes(u.target), self.models(u.model)
            _add(self.requests, self._key(self.requests, (node, model, u.operation, u.outcome, streaming), (OTHER, OTHER, u.operation, u.outcome, streaming)))
            if u.outcome == SUCCESS and u.seconds is not None:
                key = self._key(self.durations, (node, model, u.operation, streaming), (OTHER, OTHER, u.operation, streaming))
                self.durations.setdefault(key, Histogram()).observe(u.seconds)
            if u.outcome == ERROR:
                _add(self.errors, self._key(self.errors, (node, model, u.reason), (OTHER, OTHER, u.reason)))
        elif u.kind == "coordinator_request":
            coordinator = u.target if u.named else self.coordinators(u.target)
            model = self.models(u.model)
            _add(self.coordinator_requests, self._key(self.coordinator_requests, (coordinator, model, u.outcome), (OTHER, OTHER, u.outcome)))
            if u.outcome == SUCCESS and u.seconds is not None:
                key = self._key(self.coordinator_durations, (coordinator, model), (OTHER, OTHER))
                self.coordinator_durations.setdefault(key, Histogram()).observe(u.seconds)
            if u.tokens is not None:
                _add(self.coordinator_tokens, self._key(self.coordinator_tokens, (coordinator, model), (OTHER, OTHER)), u.tokens)
        elif u.kind == "lifecycle":
            coordinator = u.target if u.named else self.coordinators(u.target)
            _add(self.lifecycle, self._key(self.lifecycle, (coordinator, u.event), (OTHER, u.event)))
        elif u.kind == "heartbeat":
            coordinator = u.target if u.named else self.coordinators(u.target)
            for table, amount in ((self.workers_active, u.active), (self.workers_configured, u.configured)):
                if amount is not None and (coordinator in table or len(table) < self.max_label_sets):
                    table[coordinator] = amount

    def view(self) -> EventsView:
        with self.lock:
            return EventsView(
                self.subscribed, self.subscription_losses, dict(self.received), dict(self.invalid), dict(self.last_received),
                {"node": float(self.nodes.folded), "model": float(self.models.folded), "coordinator": float(self.coordinators.folded),
                 "label_set": float(self.folded_sets)},
                dict(self.requests), {k: h.copy() for k, h in self.durations.items()}, dict(self.errors),
                dict(self.coordinator_requests), {k: h.copy() for k, h in self.coordinator_durations.items()},
                dict(self.coordinator_tokens), dict(self.lifecycle), dict(self.workers_active), dict(self.workers_configured),
            )


def _add(table: dict, key: tuple, amount: float = 1.0) -> None:
    table[key] = table.get(key, 0.0) + amount


def _seconds(milliseconds) -> float | None:
    """None when the event gives no latency; a latency that is not a duration (negative, over MAX_MILLISECONDS,
    Infinity, not a number) makes the event invalid: counting the request without observing it would skew the
    histogram's count against its buckets."""
    if milliseconds is None:
        return None
    value = number(milliseconds, 0.0, MAX_MILLISECONDS)
    if value is None:
        raise BadValue(f"latency_ms {str(milliseconds)[:40]!r}")
    return value / 1000.0


def _workers(details: dict, name: str) -> float | None:
    """A worker count from a heartbeat: None when absent; BadValue when it cannot be one."""
    if details.get(name) is None:
        return None
    value = number(details[name], 0.0, MAX_WORKERS)
    if value is None:
        raise BadValue(f"{name} {str(details[name])[:40]!r}")
    return value


def _operation(value) -> str:
    """The operation, normalised to the known set; "unknown" when the event does not say (SOLLOL's error events)."""
    if value is None:
        return "unknown"
    operation = (text(value) or "").strip("/").rsplit("/", 1)[-1].lower()
    return operation if operation in OPERATIONS else OTHER


def _reason(error) -> str:
    message = (text(error) or "")[:500]
    status = _HTTP_STATUS.search(message)
    if status:
        return {"5": "http_5xx", "4": "http_4xx"}.get(status.group(1), "other")
    lowered = message.lower()
    if "timeout" in lowered or "timed out" in lowered:
        return "timeout"
    if any(word in lowered for word in ("connect", "refused", "reset", "unreachable", "name or service")):
        return "connection"
    return "other"
