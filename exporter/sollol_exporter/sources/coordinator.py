"""llama-server, the coordinator: /health every scrape, /metrics (as its only scraper), /props now and then.

Never /slots: it wakes a sleeping server and resets its idle timer (docs/peers.md#slots-and-sleep).

State rule: /health 200 -> ok, 503 "Loading model" -> loading, other answers -> error; /health not answered within
the coordinator's timeout or the scrape's budget -> hung (also when the peer accepted the connection and then stalled,
in a TLS handshake for instance); refused, no route or no such name -> unreachable; a peer that accepted and then
failed before the deadline -> error. Once /health has answered ok, a /metrics that does not answer in time makes it
stalled, never hung: /metrics and /props end FINISH_MARGIN before the scrape's deadline, so that the scrape finds the
read finished, and a scrape that must answer while the read still runs reports `unfinished()`, the same rule.

Pass-through of /metrics is bounded: at most MAX_SERIES llamacpp:* series per coordinator (the rest are counted as
dropped), lines over MAX_LINE_BYTES and values that are not finite (or negative counters) are invalid, and a label
that has the name of one the exporter sets (`coordinator`) is kept as `exported_<name>`, as Prometheus does.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from sollol_exporter.config import CoordinatorConfig, coordinator_label
from sollol_exporter.labels import sanitize
from sollol_exporter.logs import fields
from sollol_exporter.sources.http_client import FetchError, fetch
from sollol_exporter.values import MAX_COUNT, BadValue, decode_json

log = logging.getLogger(__name__)

OK, LOADING, STALLED, HUNG, UNREACHABLE, ERROR = "ok", "loading", "stalled", "hung", "unreachable", "error"
COORDINATOR_STATES = (OK, LOADING, STALLED, HUNG, UNREACHABLE, ERROR)
COORDINATOR_UP_STATES = (OK, LOADING, STALLED)


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
    dropped_entries: int = 0  # /metrics series past MAX_SERIES
    answered: bool = False  # something spoke HTTP on the port, or accepted the connection and then hung


@dataclass
class Memory:
    """What a coordinator told earlier reads; kept across config reloads (cluster state)."""

    metrics_enabled: float | None = None
    props_due: float = 0.0
    build: str = ""
    slots: float | None = None
    sleeping: float | None = None


# llamacpp:<name> -> (exported name, type, help). Types follow meaning, not the TYPE line (docs/peers.md#series-and-types).
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
# Averages over the window since the previous /metrics read: they change with every reader (docs/peers.md#gauges-reset-per-read).
_RESET_PER_READ = {"prompt_tokens_seconds", "predicted_tokens_seconds"}
MAX_SERIES = 500  # per coordinator and read; llama-server writes about twenty
MAX_LINE_BYTES = 4096
_MAX_NAME = 100
# Labels the exporter puts on every sollol_coordinator_* series: a coordinator's own label never replaces them.
RESERVED_LABELS = frozenset({"coordinator"})
FINISH_MARGIN = 0.2  # seconds before the scrape's deadline that /metrics and /props give up


def _name_part(raw: str) -> str:
    """A metric or label name part; a long one is cut and ends in a digest of all of it, so that two stay two."""
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in raw).strip("_").lower() or "unnamed"
    if len(cleaned) > _MAX_NAME:
        cleaned = cleaned[: _MAX_NAME - 9] + "_" + hashlib.blake2b(cleaned.encode(), digest_size=4).hexdigest()
    return cleaned


def _label_name(raw: str) -> str:
    name = _name_part(raw)
    if name[0].isdigit():
        name = "label_" + name
    return "exported_" + name if name in RESERVED_LABELS else name


def _llamacpp_lines(text: str) -> tuple[str, int, int]:
    """The llamacpp:* sample lines (at most MAX_SERIES) and their HELP and TYPE lines: all that is translated, so
    parsing costs no more than they do. Also the lines too long (invalid) and the samples past the cap (dropped).
    Lines past the cap are counted, not split out: a body of a hundred thousand series allocates nothing more."""
    kept, series, comments, invalid = [], 0, 0, 0
    start = 0
    while start < len(text) and series < MAX_SERIES:
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        is_sample = text.startswith("llamacpp:", start, end)
        if is_sample or text.startswith(("# HELP llamacpp:", "# TYPE llamacpp:"), start, end):
            if end - start > MAX_LINE_BYTES:
                invalid += is_sample
            elif is_sample:
                series += 1
                kept.append(text[start:end])
            elif comments < 2 * MAX_SERIES:
                comments += 1
                kept.append(text[start:end])
        start = end + 1
    dropped = text.count("\nllamacpp:", max(0, start - 1)) if start < len(text) else 0
    return "\n".join(kept) + "\n", invalid, dropped


def _plausible(value: float, kind: str) -> bool:
    return math.isfinite(value) and abs(value) <= MAX_COUNT and (kind != "counter" or value >= 0)


def translate(text: str) -> tuple[list[Sample], int, int]:
    """llama-server's Prometheus text → colon-free samples; unknown llamacpp:* series keep their own name.

    Returns the samples, how many were invalid (a series repeated with the same labels is kept once, the first; a
    line too long, a value not finite or out of range) and how many were dropped past MAX_SERIES."""
    samples = []
    seen: set[tuple] = set()
    text, invalid, dropped = _llamacpp_lines(text)
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
            labels = {_label_name(k): sanitize(v) for k, v in sample.labels.items()}
            labels = {k: v for k, v in labels.items() if v}  # an empty label is no label, to Prometheus
            key = (name, tuple(sorted(labels.items())))
            value = float(sample.value)
            if key in seen or not _plausible(value, kind):
                invalid += 1
                continue
            seen.add(key)
            samples.append(Sample(name, kind, help_text, labels, value))
    return samples, invalid, dropped


class CoordinatorClient:
    def __init__(self, config: CoordinatorConfig, memory: Memory | None = None):
        self.config = config
        self.name = coordinator_label(config)
        self.base = config.url.rstrip("/")
        self.memory = memory if memory is not None else Memory()
        self._health_ok = False  # /health answered ok in the read running now (see unfinished)

    def _auth(self) -> dict:
        key, problem = self.config.api_key, None
        if self.config.api_key_file:
            # Read at every use (a rotated key is taken, and masked); regular files only: a FIFO would block here.
            try:
                key = self.config.api_key_from_file()
                if not key:
                    problem = "empty: no key is sent"
            except OSError as err:
                key, problem = "", err.strerror or type(err).__name__
            except ValueError as err:
                key, problem = "", str(err)
            if problem and problem != getattr(self, "_key_file_problem", None):  # once, not at every scrape
                log.warning("cannot use api_key_file", extra=fields(coordinator=self.name, error=problem))
            self._key_file_problem = problem
        return {"Authorization": f"Bearer {key}"} if key else {}

    def read(self, deadline: float, health_only: bool = False) -> Reading:
        """/health, then (unless `health_only`: only the state is wanted) /metrics and, when due, /props."""
        started = time.monotonic()
        self._health_ok = False
        reading = self._health(deadline)
        self._health_ok = reading.state == OK
        # What follows /health ends before the scrape's deadline: a scrape waiting for this read must find it
        # finished, or it could not tell stalled (/metrics late) from hung (/health late).
        inner = deadline - FINISH_MARGIN
        if reading.state == OK and self.config.metrics and not health_only:
            if inner > time.monotonic():
                self._metrics(reading, inner)
            else:  # /health took the budget: a /metrics not asked for is not a stalled one
                reading.detail = "/metrics not read: /health took the scrape's budget"
        if reading.state == OK and time.monotonic() >= self.memory.props_due and not health_only and inner > time.monotonic():
            self._props(inner)
        reading.duration = time.monotonic() - started
        memory = self.memory
        reading.metrics_enabled = memory.metrics_enabled if self.config.metrics else 0.0
        reading.build, reading.slots, reading.sleeping = memory.build, memory.slots, memory.sleeping
        return reading

    def unfinished(self, elapsed: float) -> Reading:
        """What a scrape reports for a read still running when it must answer: stalled if /health has already
        answered ok (only /metrics or /props is left), hung otherwise."""
        if self._health_ok:
            return Reading(STALLED, elapsed, "/health is ok but /metrics did not answer in time", answered=True)
        return Reading(HUNG, elapsed, "no answer within the scrape budget")

    def _budget(self, deadline: float) -> float:
        return min(self.config.timeout, deadline - time.monotonic())

    def _health(self, deadline: float) -> Reading:
        try:
            reply = fetch(self.base + "/health", self._budget(deadline))
        except FetchError as err:
            if err.kind == "timeout":
                state = HUNG
            else:  # a peer that accepted and then broke the exchange answered, wrongly
                state = ERROR if err.connected else UNREACHABLE
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
            reading.samples, reading.invalid_entries, reading.dropped_entries = translate(reply.body.decode("utf-8", "replace"))
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
        memory.slots = float(slots) if isinstance(slots, int) and not isinstance(slots, bool) and 0 <= slots < 2**31 else memory.slots
        sleeping = props.get("is_sleeping")
        memory.sleeping = float(sleeping) if isinstance(sleeping, bool) else memory.sleeping
