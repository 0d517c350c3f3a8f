"""Probers, one module per protocol, all behind one signature:

    probe_all(targets, timeout, deadline, **options) -> dict[target, ProbeResult]

`timeout` bounds one target, `deadline` (time.monotonic()) bounds the whole call; a target not answered by
either is reported as "timeout", never left out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw. `outcome` is protocol-level; the collectors turn it into a state."""

    outcome: str
    duration: float
    detail: str = ""


OK = "ok"
REFUSED = "refused"
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
DNS_ERROR = "dns_error"
SERVING = "serving"
NOT_SERVING = "not_serving"
ERROR = "error"
