"""Ollama nodes: `GET /` for liveness and latency, `/api/ps` for loaded models, `/api/version` now and then.

Ollama has no /metrics of its own. `/api/tags` (installed models, read from disk) is not polled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sollol_exporter.addresses import Address
from sollol_exporter.labels import sanitize
from sollol_exporter.sources.http_client import FetchError, fetch
from sollol_exporter.values import MAX_BYTES, MAX_COUNT, BadValue, decode_json, items, mapping, number, text

# keep_alive < 0 pins a model; Ollama then reports an expiry ~292 years ahead (docs/peers.md#model-expiry).
MAX_EXPIRY_SECONDS = 365 * 86400.0


@dataclass
class Model:
    name: str
    size: float
    size_vram: float
    expires_in: float | None
    context_length: float | None


@dataclass
class Reading:
    up: bool
    duration: float
    detail: str = ""
    models: list[Model] = field(default_factory=list)
    version: str = ""
    invalid_entries: int = 0


def _expiry(value: object, now: datetime) -> float | None:
    stamp = text(value)
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        # Go writes nanoseconds; Python takes at most microseconds.
        head, dot, rest = stamp.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        try:
            moment = datetime.fromisoformat(f"{head}.{digits[:6]}{zone}".replace("Z", "+00:00") if dot else stamp)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max(0.0, (moment - now).total_seconds()), MAX_EXPIRY_SECONDS)


def parse_ps(body: bytes) -> tuple[list[Model], int]:
    """Loaded models from /api/ps, and how many entries or numbers were invalid (a size that no memory holds counts
    as invalid and as 0); raises BadValue for a body that is not JSON within bounds."""
    doc = decode_json(body, "/api/ps")
    now = datetime.now(UTC)
    models, invalid = [], 0

    def amount(entry: dict, name: str, high: float) -> float | None:
        nonlocal invalid
        value = number(entry.get(name), 0.0, high)
        if value is None and entry.get(name) is not None:
            invalid += 1
        return value

    for entry in items(mapping(doc).get("models")):
        if not isinstance(entry, dict):
            continue
        name = text(entry.get("name")) or text(entry.get("model"))
        if not name:
            continue
        models.append(
            Model(
                name=sanitize(name, 96),
                size=amount(entry, "size", MAX_BYTES) or 0.0,
                size_vram=amount(entry, "size_vram", MAX_BYTES) or 0.0,
                expires_in=_expiry(entry.get("expires_at"), now),
                context_length=amount(entry, "context_length", MAX_COUNT),
            )
        )
    return models, invalid


class OllamaClient:
    def __init__(self, timeout: float, host_header: str, version_interval: float, versions: dict | None = None):
        self.timeout = timeout
        self.headers = {"Host": host_header} if host_header else None
        self.version_interval = version_interval
        # {node: (version, when to ask again)}: cluster state, kept across config reloads
        self.versions: dict[Address, tuple[str, float]] = versions if versions is not None else {}

    def read(self, node: Address, deadline: float) -> Reading:
        base = f"http://{node}"
        started = time.monotonic()
        try:
            root = fetch(base + "/", min(self.timeout, deadline - time.monotonic()), self.headers)
        except FetchError as err:
            return Reading(False, time.monotonic() - started, str(err))
        duration = time.monotonic() - started
        if root.status != 200:
            return Reading(False, duration, f"GET / answered HTTP {root.status}")
        reading = Reading(True, duration)
        try:
            ps = fetch(base + "/api/ps", min(self.timeout, deadline - time.monotonic()), self.headers)
            if ps.status == 200:
                reading.models, reading.invalid_entries = parse_ps(ps.body)
            else:
                reading.detail = f"/api/ps answered HTTP {ps.status}"
        except FetchError as err:
            reading.detail = f"/api/ps: {err}"
        except BadValue as err:
            reading.detail = str(err)
            reading.invalid_entries += 1
        reading.version = self._version(node, base, deadline)
        return reading

    def _version(self, node: Address, base: str, deadline: float) -> str:
        version, due = self.versions.get(node, ("", 0.0))
        if time.monotonic() < due:
            return version
        self.versions[node] = (version, time.monotonic() + self.version_interval)
        try:
            reply = fetch(base + "/api/version", min(self.timeout, deadline - time.monotonic()), self.headers)
            found = text(mapping(decode_json(reply.body, "/api/version")).get("version")) if reply.status == 200 else None
        except (FetchError, BadValue):
            found = None
        if found:
            version = sanitize(found, 64)
            self.versions[node] = (version, time.monotonic() + self.version_interval)
        return version
