"""gRPC health checking (grpc.health.v1.Health/Check).

No rpc-server speaks gRPC: this prober is for the node agent (`sollol-exporter agent`) or any other health
service that stands beside a worker. Each target is probed on a fresh channel that is closed afterwards.

grpc is imported by the first gRPC probe, not with this module: it costs about 12 MB of memory, and most
exporters never probe over gRPC.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sollol_exporter.addresses import Address
from sollol_exporter.probes import DNS_ERROR, ERROR, NOT_SERVING, REFUSED, SERVING, TIMEOUT, UNREACHABLE, ProbeResult, Target, blocking

if TYPE_CHECKING:
    import grpc

MAX_THREADS = 32  # checks at once in one call


def probe_one(address: Address, service: str, timeout: float) -> ProbeResult:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    started = time.monotonic()
    channel = grpc.insecure_channel(str(address), options=[("grpc.enable_retries", 0)])
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=max(timeout, 0.001)
        )
    except grpc.RpcError as err:
        outcome, detail = _error(err)
        return ProbeResult(outcome, time.monotonic() - started, detail)
    finally:
        channel.close()
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    outcome = SERVING if reply.status == health_pb2.HealthCheckResponse.SERVING else NOT_SERVING
    return ProbeResult(outcome, time.monotonic() - started, status)


def _error(err: grpc.RpcError) -> tuple[str, str]:
    import grpc

    code = err.code()
    details = (err.details() or "").lower()
    if code == grpc.StatusCode.NOT_FOUND:
        return NOT_SERVING, "service unknown"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return TIMEOUT, "deadline exceeded"
    if code == grpc.StatusCode.UNAVAILABLE:
        if "refused" in details:
            return REFUSED, "connection refused"
        if "dns" in details or "resolve" in details or "resolution" in details:
            return DNS_ERROR, "name resolution failed"
        return UNREACHABLE, "unavailable"
    return ERROR, code.name.lower()


def probe_all(
    targets: Iterable[Target], timeout: float, deadline: float, *, limit: int = MAX_THREADS,
    report: Callable[[Target, ProbeResult], None] | None = None,
) -> dict[Target, ProbeResult]:
    """Check(target.service) on the health service at target.connect_to, `limit` at a time (at most MAX_THREADS)."""
    return blocking.probe_each(targets, _check, timeout, deadline, limit=min(limit, MAX_THREADS), thread_name="grpc-probe",
                               report=report)


def _check(target: Target, timeout: float) -> ProbeResult:
    return probe_one(target.connect_to, target.service, timeout)
