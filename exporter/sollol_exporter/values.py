"""Reading loosely typed JSON from SOLLOL: numbers that may be strings, fields that may be missing."""

from __future__ import annotations

import json
import math
from typing import Any


class BadValue(ValueError):
    """A value that is not what SOLLOL documents: wrong JSON, wrong type, too large."""


def decode_json(raw: bytes | str, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadValue(f"{what}: invalid JSON ({str(err)[:80]})") from None


def number(value: Any) -> float | None:
    """A finite number, from an int, float or numeric string; None for anything else (bools included)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str) and len(value) < 40:
        try:
            result = float(value)
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


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
