"""gRPC health checking (grpc.health.v1.Health/Check).

No rpc-server speaks gRPC: this prober is for the node agent (`sollol-exporter agent`) or any other health
service that stands beside a worker. Each target is probed on a fresh channel that is closed afterwards.

grpc is imported by the first gRPC probe, not with this module: it costs about 12 MB of memory, and most
exporters never probe over gRPC.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from sollol_exporter.addresses import Address
from sollol_exporter.probes import DNS_ERROR, ERROR, NOT_SERVING, REFUSED, SERVING, TIMEOUT, UNREACHABLE, ProbeResult, Target

if TYPE_CHECKING:
    import grpc


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
    targets: Iterable[Target], timeout: float, deadline: float, *, limit: int = 32,
    report: Callable[[Target, ProbeResult], None] | None = None,
) -> dict[Target, ProbeResult]:
    """Check(target.service) on the health service at target.connect_to, `limit` at a time."""
    targets = list(dict.fromkeys(targets))
    if not targets:
        return {}
    budget = max(0.0, min(timeout, deadline - time.monotonic()))
    pool = ThreadPoolExecutor(max_workers=max(1, min(limit, 32, len(targets))), thread_name_prefix="grpc-probe")

    def run(target: Target) -> ProbeResult:
        result = probe_one(target.connect_to, target.service, budget)
        if report:
            report(target, result)
        return result

    futures = {pool.submit(run, target): target for target in targets}
    wait(futures, timeout=max(0.0, deadline - time.monotonic()) + 0.05)
    pool.shutdown(wait=False, cancel_futures=True)
    results = {}
    for future, target in futures.items():
        if future.done() and not future.cancelled() and future.exception() is None:
            results[target] = future.result()
        else:
            results[target] = ProbeResult(TIMEOUT, budget, "scrape deadline reached")
    return results
