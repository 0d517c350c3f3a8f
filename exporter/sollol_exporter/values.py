"""Reading loosely typed JSON from SOLLOL: bounded in size and depth, numbers that may be strings, fields that
may be missing, and numbers outside what could be a measurement refused (the caller counts them as invalid)."""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

MAX_JSON_BYTES = 4 * 1_048_576
MAX_JSON_DEPTH = 64
# A string token runs to its closing quote or, unterminated, to the end of the input (possessive, DOTALL): every
# byte is looked at once, so a hostile value of escaped quotes cannot make the scan quadratic.
_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)


class BadValue(ValueError):
    """A value that is not what SOLLOL documents: wrong JSON, wrong type, too large, too deep."""


def _too_deep(raw: bytes, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit`; stops at the first level past it."""
    depth = 0
    for match in _STRUCTURE.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def decode_json(raw: bytes | str, what: str, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise BadValue(f"{what}: JSON of {len(data)} bytes exceeds {max_bytes}")
    if _too_deep(data, max_depth):
        raise BadValue(f"{what}: JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise BadValue(f"{what}: invalid JSON ({str(err)[:80]})") from None


# Plausible ranges. A value outside its range is not a measurement: a single 1e308 would become +Inf once scaled to
# bytes, and a timestamp from the future would hide staleness for as long as it stays the newest one.
MAX_COUNT = float(2**53)  # counters and counts: exact as a float up to here
MAX_MEBIBYTES = float(2**30)  # one pebibyte, in MiB: memory of a GPU, a node or a worker
MAX_BYTES = MAX_MEBIBYTES * 1_048_576
MAX_MILLISECONDS = 1e7  # about 2.8 hours: a latency or duration (the events use the same bound)
MAX_SECONDS = 100 * 365 * 86400.0  # an uptime
MAX_CLOCK_SKEW = 300.0  # how far ahead of this host's clock a peer's timestamp may be
MAX_EVENT_BYTES = 65_536  # one event from SOLLOL: a routing stream entry or a PUB/SUB message


def number(value: Any, low: float = -math.inf, high: float = math.inf) -> float | None:
    """A finite number within [low, high], from an int, float or numeric string; None for anything else (bools
    included)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            result = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str) and len(value) < 40:
        try:
            result = float(value)
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) and low <= result <= high else None


def epoch_seconds(value: Any, now: float | None = None) -> float | None:
    """Seconds since the epoch, after 1970 and not ahead of `now` (this host's clock) by more than MAX_CLOCK_SKEW."""
    now = time.time() if now is None else now
    return number(value, 1e-9, now + MAX_CLOCK_SKEW)


def flag(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return 1.0 if value.lower() == "true" else 0.0
    return None


def mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list:
    return value if isinstance(value, list) else []


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
