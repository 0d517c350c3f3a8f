"""llama-server, the coordinator: /health every scrape, /metrics (as its only scraper), /props now and then.

Never /slots: it wakes a sleeping server and resets its idle timer (peers.md §1.5, §1.8).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from sollol_exporter import redact
from sollol_exporter.config import CoordinatorConfig, coordinator_label
from sollol_exporter.labels import sanitize
from sollol_exporter.logs import fields
from sollol_exporter.sources.http_client import FetchError, fetch
from sollol_exporter.values import BadValue, decode_json

log = logging.getLogger(__name__)

OK, LOADING, STALLED, HUNG, UNREACHABLE, ERROR = "ok", "loading", "stalled", "hung", "unreachable", "error"
STATES = (OK, LOADING, STALLED, HUNG, UNREACHABLE, ERROR)
UP_STATES = (OK, LOADING, STALLED)


@dataclass
class Sample:
    name: str  # without the sollol_coordinator_ prefix
    kind: str  # counter | gauge
    help: str
    labels: dict[str, str]
    value: float


@dataclass
class Reading:
    state: str
    duration: float
    detail: str = ""
    metrics_enabled: float | None = None
    metrics_up: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    build: str = ""
    slots: float | None = None
    sleeping: float | None = None
    invalid_entries: int = 0
    answered: bool = False  # something spoke HTTP on the port, or accepted the connection and then hung


@dataclass
class Memory:
    """What a coordinator told earlier reads; kept across config reloads (cluster state)."""

    metrics_enabled: float | None = None
    props_due: float = 0.0
    build: str = ""
    slots: float | None = None
    sleeping: float | None = None


# llamacpp:<name> -> (exported name, type, help). Types follow meaning, not the TYPE line (peers.md §1.4).
_SERIES = {
    "prompt_tokens_total": ("prompt_tokens_total", "counter", "Prompt tokens processed (since b10406 excluding cached tokens)."),
    "prompt_tokens_cached_total": ("prompt_tokens_cached_total", "counter", "Prompt tokens reused from the cache."),
    "prompt_seconds_total": ("prompt_seconds_total", "counter", "Time spent processing prompts."),
    "tokens_predicted_total": ("tokens_predicted_total", "counter", "Generated tokens."),
    "tokens_predicted_seconds_total": ("tokens_predicted_seconds_total", "counter", "Time spent generating tokens."),
    "n_decode_total": ("decode_calls_total", "counter", "llama_decode() calls."),
    "n_tokens_max": ("max_sequence_tokens", "gauge", "Largest sequence length seen (prompt + generation)."),
    "n_busy_slots_per_decode": ("busy_slots_per_decode", "gauge", "Average busy slots per llama_decode() call."),
    "requests_processing": ("requests_processing", "gauge", "Requests being processed."),
    "requests_deferred": ("requests_deferred", "gauge", "Requests deferred (waiting for a slot)."),
    "kv_cache_usage_ratio": ("kv_cache_usage_ratio", "gauge", "KV-cache usage, 1 is full (builds before b5441)."),
    "kv_cache_tokens": ("kv_cache_tokens", "gauge", "Tokens in the KV cache (builds before b5441)."),
    "spec_decode_num_draft_tokens_total": ("speculative_draft_tokens_total", "counter", "Speculative draft tokens generated."),
    "spec_decode_num_accepted_tokens_total": ("speculative_accepted_tokens_total", "counter", "Speculative draft tokens accepted."),
    "spec_decode_num_drafts_total": ("speculative_drafts_total", "counter", "Speculative verification steps."),
    "spec_decode_num_accepted_tokens_per_pos_total": (
        "speculative_accepted_tokens_by_position_total",
        "counter",
        "Accepted speculative tokens per draft position.",
    ),
}
# Averages over the window since the previous /metrics read: they change with every reader (peers.md §1.4).
_RESET_PER_READ = {"prompt_tokens_seconds", "predicted_tokens_seconds"}


def _name_part(raw: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in raw)
    return cleaned.strip("_").lower()[:100] or "unnamed"


def translate(text: str) -> tuple[list[Sample], int]:
    """llama-server's Prometheus text → colon-free samples; unknown llamacpp:* series keep their own name.

    A series repeated with the same labels is kept once (the first); the repeats are counted and returned."""
    samples = []
    seen: set[tuple] = set()
    repeated = 0
    for family in text_string_to_metric_families(text):
        base = family.name.split(":", 1)[1] if family.name.startswith("llamacpp:") else None
        if base is None:
            continue
        for sample in family.samples:
            raw_name = sample.name.split(":", 1)[1]
            if raw_name in _RESET_PER_READ or base in _RESET_PER_READ:
                continue
            known = _SERIES.get(raw_name) or _SERIES.get(base)
            if known:
                name, kind, help_text = known
            else:
                kind = "counter" if family.type == "counter" else "gauge"
                name = _name_part(raw_name)
                if kind == "counter" and not name.endswith("_total"):
                    name += "_total"
                help_text = sanitize(family.documentation or f"llama-server series llamacpp:{raw_name}.", 200)
            labels = {_name_part(k): sanitize(v) for k, v in sample.labels.items()}
            key = (name, tuple(sorted(labels.items())))
            if key in seen:
                repeated += 1
                continue
            seen.add(key)
            samples.append(Sample(name, kind, help_text, labels, float(sample.value)))
    return samples, repeated


class CoordinatorClient:
    def __init__(self, config: CoordinatorConfig, memory: Memory | None = None):
        self.config = config
        self.name = coordinator_label(config)
        self.base = config.url.rstrip("/")
        self.memory = memory if memory is not None else Memory()

    def _auth(self) -> dict:
        key = self.config.api_key
        if self.config.api_key_file:
            try:
                with open(os.path.expanduser(self.config.api_key_file), encoding="utf-8") as handle:
                    key = handle.read(65536).strip()
                redact.register(key)  # a rotated key is masked too
            except OSError as err:
                log.warning("cannot read api_key_file", extra=fields(coordinator=self.name, error=err.strerror))
            except ValueError:  # not UTF-8
                log.warning("cannot read api_key_file", extra=fields(coordinator=self.name, error="not UTF-8 text"))
            if any(ord(c) < 32 or ord(c) > 255 for c in key):
                log.warning("api_key_file holds characters an HTTP header cannot carry", extra=fields(coordinator=self.name))
                key = ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def read(self, deadline: float, health_only: bool = False) -> Reading:
        """/health, then (unless `health_only`: only the state is wanted) /metrics and, when due, /props."""
        started = time.monotonic()
        reading = self._health(deadline)
        if reading.state == OK and self.config.metrics and not health_only:
            self._metrics(reading, deadline)
        if reading.state == OK and time.monotonic() >= self.memory.props_due and not health_only:
            self._props(deadline)
        reading.duration = time.monotonic() - started
        memory = self.memory
        reading.metrics_enabled = memory.metrics_enabled if self.config.metrics else 0.0
        reading.build, reading.slots, reading.sleeping = memory.build, memory.slots, memory.sleeping
        return reading

    def _budget(self, deadline: float) -> float:
        return min(self.config.timeout, deadline - time.monotonic())

    def _health(self, deadline: float) -> Reading:
        try:
            reply = fetch(self.base + "/health", self._budget(deadline))
        except FetchError as err:
            state = HUNG if err.kind == "timeout" else UNREACHABLE
            return Reading(state, 0.0, str(err), answered=err.connected)
        if reply.status == 200:
            return Reading(OK, 0.0, answered=True)
        if reply.status == 503 and b"loading" in reply.body.lower():
            return Reading(LOADING, 0.0, "loading model", answered=True)
        return Reading(ERROR, 0.0, f"/health answered HTTP {reply.status}", answered=True)

    def _metrics(self, reading: Reading, deadline: float) -> None:
        try:
            reply = fetch(self.base + "/metrics", self._budget(deadline), headers=self._auth())
        except FetchError as err:
            if err.kind == "timeout":
                reading.state, reading.detail = STALLED, "/health is ok but /metrics timed out"
            else:
                reading.detail = f"/metrics: {err}"
            return
        if reply.status == 501:
            self.memory.metrics_enabled = 0.0
            reading.detail = "metrics endpoint disabled (start llama-server with --metrics)"
            return
        if reply.status in (401, 403):
            reading.detail = f"/metrics answered HTTP {reply.status}: check api_key"
            return
        if reply.status != 200:
            reading.detail = f"/metrics answered HTTP {reply.status}"
            return
        self.memory.metrics_enabled = 1.0
        try:
            reading.samples, reading.invalid_entries = translate(reply.body.decode("utf-8", "replace"))
            reading.metrics_up = 1.0
        except (ValueError, IndexError, TypeError, RecursionError) as err:
            reading.detail = f"/metrics: unparseable ({str(err)[:80]})"

    def _props(self, deadline: float) -> None:
        memory = self.memory
        memory.props_due = time.monotonic() + self.config.props_interval
        try:
            reply = fetch(self.base + "/props", self._budget(deadline), headers=self._auth())
            props = decode_json(reply.body, "/props") if reply.status == 200 else None
        except (FetchError, BadValue):
            props = None
        if not isinstance(props, dict):
            memory.props_due = time.monotonic() + min(60.0, self.config.props_interval)
            return
        build = props.get("build_info")
        memory.build = sanitize(build, 64) if isinstance(build, str) else memory.build
        slots = props.get("total_slots")
        memory.slots = float(slots) if isinstance(slots, int) and not isinstance(slots, bool) and slots < 2**31 else memory.slots
        sleeping = props.get("is_sleeping")
        memory.sleeping = float(sleeping) if isinstance(sleeping, bool) else memory.sleeping
