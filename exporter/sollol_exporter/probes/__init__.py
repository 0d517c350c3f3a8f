"""Probers, one module per protocol, all behind one signature (the table, keyed by ProbeKind, is in
`probes.dispatch`):

    probe_all(targets, timeout, deadline, *, limit, report=None) -> dict[Target, ProbeResult]

`timeout` bounds one target, `deadline` (time.monotonic()) bounds the whole call, `limit` bounds how many run
at once; `report(target, result)` is called as each result comes in, so that a scrape that cannot wait for the
whole batch still gets the results already known. A target not answered in time is reported as "timeout",
never left out. The probers that block a thread per target share their pool in `probes.blocking`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sollol_exporter.addresses import Address


class ProbeKind(StrEnum):
    """How a worker is probed: the names the config's `probe` keys take (members equal those strings)."""

    TCP = "tcp"
    GRPC = "grpc"
    GGML = "ggml"


@dataclass(frozen=True, order=True, slots=True)
class Target:
    """A worker to probe; `via` is where the probe connects when that is not the worker itself (a gRPC health
    service beside it), `service` the gRPC health service name."""

    address: Address
    via: Address | None = None
    service: str = ""
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A target is a dictionary key several times per scrape, and a dataclass hashes in Python: hash it once.
        object.__setattr__(self, "_hash", hash((self.address, self.via, self.service)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def connect_to(self) -> Address:
        return self.via or self.address


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe saw. `outcome` is protocol-level; the scraper turns it into a state. The ggml handshake
    also fills `version` and `devices` ((free, total) bytes per device)."""

    outcome: str
    duration: float
    detail: str = ""
    version: str = ""
    devices: tuple[tuple[int, int], ...] = ()


OK = "ok"
REFUSED = "refused"
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
DNS_ERROR = "dns_error"
SERVING = "serving"
NOT_SERVING = "not_serving"
BUSY = "busy"  # connected, but the worker did not answer: a client (the coordinator) holds it
ERROR = "error"
