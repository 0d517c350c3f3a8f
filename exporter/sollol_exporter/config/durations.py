"""Durations in the two notations the config files use: Prometheus' in the exporter config (`500ms`, `1h30m`, `1d`,
or a number of seconds), Go's in exporter-toolkit's web config (`250ms`, `1m30s`, `1.5h`; a bare number only if 0).

Both are int64 nanoseconds where they come from, so both stop at about 292 years.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_DURATION = (2**63 - 1) / 1e9

_NUMBER = r"\d+(?:\.\d+)?"
_UNITS = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# Prometheus' model.ParseDuration: units in this order, each at most once ("1h30m", "1m30s", "1d"), plus decimals.
_PROMETHEUS = re.compile(
    "^" + "".join(f"(?:(?P<{unit}>{_NUMBER}){'m(?!s)' if unit == 'm' else unit})?" for unit in _UNITS) + "$"
)
# Go's time.ParseDuration: any units in any order ("1m30s", "30s1m"), ".5s" and "1.s" included, no sign here.
_GO = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _prometheus_text(text: str) -> float:
    if text == "0":
        return 0.0
    match = _PROMETHEUS.match(text)
    if not text or not match:
        raise ValueError("not a duration")
    return sum(float(number) * _UNITS[unit] for unit, number in match.groupdict().items() if number is not None)


def _go_text(text: str) -> float:
    if text == "0":
        return 0.0
    if not text or _GO.sub("", text):
        raise ValueError("not a duration")
    return sum(float(number) * _GO_UNITS[unit] for number, unit in _GO.findall(text))


@dataclass(frozen=True)
class Notation:
    """How a duration is written: `read_text` turns the text into seconds (ValueError if it is not one)."""

    read_text: Callable[[str], float]
    numbers_are_seconds: bool  # Prometheus' YAML takes `30` as 30s; Go's needs a unit on anything but 0
    examples: str  # for an error message
    longest: str  # the largest duration, written in this notation


PROMETHEUS = Notation(_prometheus_text, numbers_are_seconds=True, examples="500ms, 30s, 1m30s, 2h or 1d", longest="about 292y")
GO = Notation(_go_text, numbers_are_seconds=False, examples="250ms, 30s, 1m30s or 2h", longest="about 2562047h")


class DurationOutOfRange(ValueError):
    """A duration that reads, but is negative, not finite or longer than an int64 of nanoseconds."""


def parse_duration(value: Any, notation: Notation = PROMETHEUS) -> float:
    """Seconds, from a number or a duration string; ValueError with the reason otherwise (DurationOutOfRange if it
    reads but cannot be held)."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        seconds = _number(value, notation)
    elif isinstance(value, str):
        seconds = notation.read_text(value.strip())
    else:
        raise ValueError("not a duration")
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DURATION:
        raise DurationOutOfRange("duration out of range")
    return seconds


def _number(value: int | float, notation: Notation) -> float:
    if not notation.numbers_are_seconds:  # a number without a unit is a duration only if it is the int 0
        if isinstance(value, int) and value == 0:
            return 0.0
        raise ValueError("not a duration")
    try:
        return float(value)
    except OverflowError:  # an int of more than 308 digits
        raise DurationOutOfRange("duration out of range") from None
