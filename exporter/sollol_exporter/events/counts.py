"""Counting SOLLOL's activity events (sollol-data §6.1, §6.3, §8).

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
Request events (ollama_request, rpc_request) are counted as received only.

Node and model names come from outside: each label keeps at most a configured number of distinct values, later
ones are folded into "other" and the folds are counted.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from dataclasses import dataclass, field

from sollol_exporter.events import OLLAMA, RPC, TRACES
from sollol_exporter.labels import Address, parse_address, sanitize
from sollol_exporter.values import BadValue, decode_json, mapping, number, text

MAX_EVENT_BYTES = 65_536
OTHER = "other"
# LLM requests: tens of milliseconds (embeddings, cache hits) to several minutes (long generations on CPU).
BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
OPERATIONS = ("chat", "generate", "embed", "embeddings", "completion", "other")  # plus "unknown": not said
REASONS = ("http_5xx", "http_4xx", "timeout", "connection", "other")
LIFECYCLE = {"coordinator_start": "start", "coordinator_stop": "stop", "coordinator_model_load": "model_load"}
SUCCESS, ERROR = "success", "error"
_HTTP_STATUS = re.compile(r"\bHTTP\s*([1-5])\d\d\b")


class Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds

    def copy(self) -> "Histogram":
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
    received: dict[str, float]
    invalid: dict[str, float]
    last_received: dict[str, float]
    folded: dict[str, float]
    requests: dict[tuple[str, str, str, str], float]
    durations: dict[tuple[str, str, str], Histogram]
    errors: dict[tuple[str, str, str], float]
    coordinator_requests: dict[tuple[str, str, str], float]
    coordinator_durations: dict[tuple[str, str], Histogram]
    coordinator_tokens: dict[tuple[str, str], float]
    lifecycle: dict[tuple[str, str], float]
    workers_active: dict[str, float]
    workers_configured: dict[str, float]


@dataclass
class EventCounts:
    """Everything counted from the events; lives in the cluster state, so reloads and Redis outages keep it."""

    max_nodes: int = 100
    max_models: int = 100
    subscribed: bool = False
    received: dict[str, float] = field(default_factory=dict)
    invalid: dict[str, float] = field(default_factory=dict)
    last_received: dict[str, float] = field(default_factory=dict)
    requests: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    durations: dict[tuple[str, str, str], Histogram] = field(default_factory=dict)
    errors: dict[tuple[str, str, str], float] = field(default_factory=dict)
    coordinator_requests: dict[tuple[str, str, str], float] = field(default_factory=dict)
    coordinator_durations: dict[tuple[str, str], Histogram] = field(default_factory=dict)
    coordinator_tokens: dict[tuple[str, str], float] = field(default_factory=dict)
    lifecycle: dict[tuple[str, str], float] = field(default_factory=dict)
    workers_active: dict[str, float] = field(default_factory=dict)
    workers_configured: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.nodes = LabelCap(self.max_nodes)
        self.models = LabelCap(self.max_models)
        self.coordinators = LabelCap(self.max_nodes)

    def configure(self, max_nodes: int, max_models: int) -> None:
        with self.lock:
            for cap, limit in ((self.nodes, max_nodes), (self.models, max_models), (self.coordinators, max_nodes)):
                cap.limit = limit

    def set_subscribed(self, subscribed: bool) -> None:
        with self.lock:
            self.subscribed = subscribed

    def handle(self, channel: str, raw: bytes | str, coordinator_names: dict[Address, str] | None = None) -> bool:
        """Count one message from a channel of kind `channel` (ollama, rpc, traces); False if it was invalid
        (counted as such, nothing else changed)."""
        with self.lock:
            self.received[channel] = self.received.get(channel, 0.0) + 1
            self.last_received[channel] = time.time()
            try:
                event = self._decode(raw)
                if channel == OLLAMA:
                    self._ollama(event)
                elif channel == RPC:
                    self._rpc(event, coordinator_names or {})
                elif channel == TRACES:
                    self._trace(event, coordinator_names or {})
                else:
                    raise BadValue(f"no channel of kind {channel!r}")
                return True
            except (BadValue, ValueError):
                self.invalid[channel] = self.invalid.get(channel, 0.0) + 1
                return False

    @staticmethod
    def _decode(raw: bytes | str) -> dict:
        size = len(raw)
        if size > MAX_EVENT_BYTES:
            raise BadValue(f"event of {size} bytes")
        event = decode_json(raw, "event")
        if not isinstance(event, dict):
            raise BadValue("event is not a JSON object")
        return event

    def _model(self, details: dict) -> str:
        return self.models(sanitize(text(details.get("model")) or "unknown", 96) or "unknown")

    def _ollama(self, event: dict) -> None:
        kind = text(event.get("event_type"))
        details = mapping(event.get("details"))
        if kind == "ollama_request":
            return
        if kind not in ("ollama_response", "ollama_error"):
            raise BadValue(f"unknown event type {kind!r}")
        node = self.nodes(str(parse_address(event.get("backend"), 11434)))
        model = self._model(details)
        operation = _operation(details.get("operation"))
        seconds = _seconds(details.get("latency_ms"))
        if kind == "ollama_response":
            _add(self.requests, (node, model, operation, SUCCESS))
            if seconds is not None:
                self.durations.setdefault((node, model, operation), Histogram()).observe(seconds)
        else:
            _add(self.requests, (node, model, operation, ERROR))
            _add(self.errors, (node, model, _reason(details.get("error"))))

    def _coordinator(self, backend, names: dict[Address, str]) -> str:
        if backend == "rpc_registry":
            return "rpc_registry"
        address = parse_address(backend, 80)
        return names.get(address) or self.coordinators(str(address))

    def _rpc(self, event: dict, names: dict[Address, str]) -> None:
        kind = text(event.get("event_type")) or text(event.get("event"))
        details = mapping(event.get("details"))
        if kind == "rpc_request":
            return
        if kind in ("rpc_response", "rpc_error"):
            coordinator = self._coordinator(event.get("backend"), names)
            model = self._model(details)
            seconds = _seconds(details.get("latency_ms"))
            if kind == "rpc_response":
                _add(self.coordinator_requests, (coordinator, model, SUCCESS))
                if seconds is not None:
                    self.coordinator_durations.setdefault((coordinator, model), Histogram()).observe(seconds)
                tokens = number(details.get("completion_tokens"))
                if tokens is not None and tokens >= 0:
                    _add(self.coordinator_tokens, (coordinator, model), tokens)
            else:
                _add(self.coordinator_requests, (coordinator, model, ERROR))
        elif kind in LIFECYCLE:
            coordinator = self._coordinator(details.get("coordinator") or event.get("backend"), names)
            name = LIFECYCLE[kind]
            reason = (text(details.get("reason")) or "").lower()
            if name == "stop" and ("restart_attempt" in details or "automatic restart" in reason):
                name = "restart"
            _add(self.lifecycle, (coordinator, name))
        elif kind == "rpc_backend_connect":
            coordinator = self._coordinator(event.get("backend"), names)
            active = number(details.get("total_active"))
            if active is None:
                active = number(details.get("rpc_backends"))
            if active is None and isinstance(details.get("rpc_addresses"), list):
                active = float(len(details["rpc_addresses"]))
            configured = number(details.get("total_configured"))
            if active is not None:
                self.workers_active[coordinator] = active
            if configured is not None:
                self.workers_configured[coordinator] = configured
        elif kind != "rpc_backend_disconnect":
            raise BadValue(f"unknown event type {kind!r}")

    def _trace(self, event: dict, names: dict[Address, str]) -> None:
        kind = text(event.get("event"))
        if kind in ("trace_start", "trace_complete"):
            return
        if kind != "trace_failed":
            raise BadValue(f"unknown trace event {kind!r}")
        trace = mapping(event.get("trace"))
        coordinator = self._coordinator(trace.get("coordinator_url"), names)
        _add(self.coordinator_requests, (coordinator, self._model(trace), ERROR))

    def view(self) -> EventsView:
        with self.lock:
            return EventsView(
                self.subscribed, dict(self.received), dict(self.invalid), dict(self.last_received),
                {"node": float(self.nodes.folded), "model": float(self.models.folded), "coordinator": float(self.coordinators.folded)},
                dict(self.requests), {k: h.copy() for k, h in self.durations.items()}, dict(self.errors),
                dict(self.coordinator_requests), {k: h.copy() for k, h in self.coordinator_durations.items()},
                dict(self.coordinator_tokens), dict(self.lifecycle), dict(self.workers_active), dict(self.workers_configured),
            )


def _add(table: dict, key: tuple, amount: float = 1.0) -> None:
    table[key] = table.get(key, 0.0) + amount


def _seconds(milliseconds) -> float | None:
    value = number(milliseconds)
    return None if value is None or value < 0 else value / 1000.0


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
