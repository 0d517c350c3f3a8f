"""TCP connect-and-close: the only probe that is safe against a ggml rpc-server by default.

It opens a connection, sends nothing and closes it at once. All targets are probed in one thread with
non-blocking sockets, so a thousand backends cost a thousand file descriptors for at most `timeout`, not a
thousand threads.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections import deque
from typing import Callable, Iterable

from sollol_exporter import resolver
from sollol_exporter.labels import Address
from sollol_exporter.probes import DNS_ERROR, OK, REFUSED, TIMEOUT, UNREACHABLE, ProbeResult, Target


def _resolve(addresses: list[Address], deadline: float, lookup: Callable) -> tuple[dict[Address, tuple], dict[Address, ProbeResult]]:
    """Socket addresses for every target, looked up within the deadline on the resolver's own threads (IP
    literals need no lookup)."""
    names = resolver.shared() if lookup is socket.getaddrinfo else resolver.Resolver(lookup, threads=2)
    started = time.monotonic()
    answers = names.resolve_many([(a.host, a.port) for a in addresses], deadline)
    resolved: dict[Address, tuple] = {}
    failed: dict[Address, ProbeResult] = {}
    for address in addresses:
        answer = answers[address.host, address.port]
        if isinstance(answer, resolver.LookupTimeout):
            failed[address] = ProbeResult(DNS_ERROR, time.monotonic() - started, "name resolution timed out")
        elif isinstance(answer, Exception) or not answer:
            failed[address] = ProbeResult(DNS_ERROR, time.monotonic() - started, str(answer) or "no address")
        else:
            family, _, _, _, sockaddr = answer[0]
            resolved[address] = (family, sockaddr)
    return resolved, failed


def _outcome(code: int) -> tuple[str, str]:
    if code == 0:
        return OK, ""
    if code == errno.ECONNREFUSED:
        return REFUSED, "connection refused"
    if code == errno.ETIMEDOUT:
        return TIMEOUT, "connect timed out"
    return UNREACHABLE, errno.errorcode.get(code, str(code)).lower()


def probe_all(
    targets: Iterable[Target],
    timeout: float,
    deadline: float,
    *,
    limit: int = 1024,
    report: Callable[[Target, ProbeResult], None] | None = None,
    resolver: Callable = socket.getaddrinfo,
) -> dict[Target, ProbeResult]:
    """Connect to each target's address and close at once; `limit` connects in flight at a time."""
    by_address: dict[Address, list[Target]] = {}
    for target in targets:
        by_address.setdefault(target.connect_to, []).append(target)
    results = _probe_addresses(list(by_address), timeout, deadline, limit, resolver, report and (lambda a, r: [report(t, r) for t in by_address[a]]))
    return {target: results[address] for address, group in by_address.items() for target in group}


def _probe_addresses(addresses: list[Address], timeout: float, deadline: float, max_concurrency: int, resolver: Callable,
                     report: Callable | None) -> dict[Address, ProbeResult]:
    resolved, results = _resolve(addresses, deadline, resolver)
    if report:
        for address, result in results.items():
            report(address, result)
    queue = deque(address for address in addresses if address in resolved)
    selector = selectors.DefaultSelector()
    in_flight: dict[socket.socket, tuple[Address, float]] = {}

    def finish(sock: socket.socket, outcome: str, detail: str) -> None:
        address, started = in_flight.pop(sock)
        selector.unregister(sock)
        sock.close()
        results[address] = ProbeResult(outcome, time.monotonic() - started, detail)
        if report:
            report(address, results[address])

    try:
        while queue or in_flight:
            while queue and len(in_flight) < max_concurrency and time.monotonic() < deadline:
                address = queue.popleft()
                family, sockaddr = resolved[address]
                started = time.monotonic()
                try:
                    sock = socket.socket(family, socket.SOCK_STREAM)
                except OSError as err:
                    results[address] = ProbeResult(UNREACHABLE, 0.0, f"socket: {err.strerror}")
                    if report:
                        report(address, results[address])
                    continue
                sock.setblocking(False)
                code = sock.connect_ex(sockaddr)
                in_flight[sock] = (address, started)
                selector.register(sock, selectors.EVENT_WRITE)
                if code not in (0, errno.EINPROGRESS, errno.EAGAIN):
                    finish(sock, *_outcome(code))
                elif code == 0:
                    finish(sock, OK, "")
            if not in_flight:
                if queue:
                    for address in queue:
                        results[address] = ProbeResult(TIMEOUT, 0.0, "scrape deadline reached before the probe")
                        if report:
                            report(address, results[address])
                    queue.clear()
                break
            now = time.monotonic()
            expiry = min(min(started + timeout for _, started in in_flight.values()), deadline)
            for key, _ in selector.select(timeout=max(0.0, expiry - now)):
                sock = key.fileobj
                finish(sock, *_outcome(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))
            now = time.monotonic()
            for sock, (_, started) in list(in_flight.items()):
                if now >= started + timeout or now >= deadline:
                    finish(sock, TIMEOUT, "connect timed out")
    finally:
        for sock in list(in_flight):
            selector.unregister(sock)
            sock.close()
        selector.close()
    return results
