"""TCP connect-and-close: the only probe that is safe against a ggml rpc-server by default.

It opens a connection, sends nothing and closes it at once (an orderly close: the safe pattern for a worker that a
coordinator holds). All targets are probed in one thread: non-blocking sockets started together and waited for
with one epoll (Linux), so a thousand backends cost a thousand file descriptors for at most `timeout`, not a thousand
threads. A connect costs little more than the kernel's own work, so the loop keeps Python's share small: no
selector objects, no per-socket error query when epoll already says the connect succeeded, no scan of every socket
in flight for the next expiry (all share one timeout, so the oldest expires first).
"""

from __future__ import annotations

import _socket
import errno
import select
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable

from sollol_exporter import resolver as name_resolver
from sollol_exporter.addresses import Address
from sollol_exporter.probes import DNS_ERROR, OK, REFUSED, TIMEOUT, UNREACHABLE, ProbeResult, Target

_NONBLOCKING_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_CONNECTED = select.EPOLLOUT  # writable and nothing else: the handshake completed, no error to ask for
_MAX_EVENTS = 1024
_MAX_LITERALS = 4096
_literals: dict[str, int | None] = {}  # host -> family of an IP literal, None for a name; every scrape asks again


def _literal_family(host: str) -> int | None:
    """AF_INET or AF_INET6 for an IP literal, None for a name (to be looked up)."""
    known = _literals
    family = known.get(host, -1)
    if family != -1:
        return family
    family = None
    for each in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(each, host)
        except (OSError, ValueError):
            continue
        family = each
        break
    if len(known) >= _MAX_LITERALS:
        known.clear()
    known[host] = family
    return family


def _resolve(addresses: list[Address], deadline: float, lookup: Callable) -> tuple[list[tuple | None], dict[int, ProbeResult]]:
    """The socket address for each address (None where it did not resolve), and why those failed, by position: IP
    literals at once, names looked up within the deadline on the resolver's own threads."""
    resolved: list[tuple | None] = []
    names: list[int] = []
    for index, address in enumerate(addresses):
        family = _literal_family(address.host)
        if family is None:
            names.append(index)
            resolved.append(None)
        else:
            resolved.append((family, (address.host, address.port)))
    failed: dict[int, ProbeResult] = {}
    if not names:
        return resolved, failed
    resolver = name_resolver.shared() if lookup is socket.getaddrinfo else name_resolver.Resolver(lookup, threads=2)
    started = time.monotonic()
    answers = resolver.resolve_many([(addresses[i].host, addresses[i].port) for i in names], deadline)
    for index in names:
        answer = answers[addresses[index].host, addresses[index].port]
        if isinstance(answer, name_resolver.LookupTimeout):
            failed[index] = ProbeResult(DNS_ERROR, time.monotonic() - started, "name resolution timed out")
        elif isinstance(answer, BaseException) or not answer:
            failed[index] = ProbeResult(DNS_ERROR, time.monotonic() - started, str(answer) or "no address")
        else:
            family, _, _, _, sockaddr = answer[0]
            resolved[index] = (family, sockaddr)
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
    """Connect to each target's address and close at once; `limit` connects in flight at a time. Targets that
    connect to the same address share one connect."""
    by_address: dict[Address, list[Target]] = {}
    for target in targets:
        group = by_address.get(target.connect_to)
        if group is None:
            by_address[target.connect_to] = [target]
        else:
            group.append(target)
    # From here on addresses are known by their position: an Address hashes in Python, a list index does not.
    addresses = list(by_address)
    groups = list(by_address.values())
    results: list[ProbeResult | None] = [None] * len(addresses)

    def record(index: int, result: ProbeResult) -> None:
        results[index] = result
        if report is not None:
            for target in groups[index]:
                report(target, result)

    _probe_addresses(addresses, timeout, deadline, limit, resolver, record)
    return {target: result for group, result in zip(groups, results, strict=True) for target in group}  # type: ignore[misc]


def _probe_addresses(addresses: list[Address], timeout: float, deadline: float, max_concurrency: int, lookup: Callable,
                     record: Callable[[int, ProbeResult], None]) -> None:
    """Probe every address, calling record(position, result) once for each."""
    resolved, failed = _resolve(addresses, deadline, lookup)
    for index, result in failed.items():
        record(index, result)
    queue = deque(index for index, where in enumerate(resolved) if where is not None)
    max_concurrency = max(1, max_concurrency)
    epoll = select.epoll()
    # by file descriptor, in the order the connects started: the first one is always the next to expire
    in_flight: dict[int, tuple[_socket.socket, int, float]] = {}
    monotonic = time.monotonic
    try:
        while queue or in_flight:
            now = monotonic()
            while queue and len(in_flight) < max_concurrency and now < deadline:
                index = queue.popleft()
                family, sockaddr = resolved[index]  # type: ignore[misc]
                try:
                    # the C socket type: socket.socket's Python layer costs more than its connect and close
                    sock = _socket.socket(family, _NONBLOCKING_STREAM)
                except OSError as err:
                    record(index, ProbeResult(UNREACHABLE, 0.0, f"socket: {err.strerror}"))
                    continue
                started = monotonic()
                code = sock.connect_ex(sockaddr)
                if code in (errno.EINPROGRESS, errno.EAGAIN):
                    fd = sock.fileno()
                    epoll.register(fd, select.EPOLLOUT)
                    in_flight[fd] = (sock, index, started)
                else:
                    sock.close()
                    outcome, detail = _outcome(code)
                    record(index, ProbeResult(outcome, monotonic() - started, detail))
            if not in_flight:
                for index in queue:
                    record(index, ProbeResult(TIMEOUT, 0.0, "scrape deadline reached before the probe"))
                queue.clear()
                break
            oldest = in_flight[next(iter(in_flight))][2]
            for fd, events in epoll.poll(max(0.0, min(oldest + timeout, deadline) - monotonic()), _MAX_EVENTS):
                sock, index, started = in_flight.pop(fd)
                if events == _CONNECTED:
                    outcome, detail = OK, ""
                else:
                    outcome, detail = _outcome(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
                sock.close()  # closing also takes it out of the epoll set
                record(index, ProbeResult(outcome, monotonic() - started, detail))
            now = monotonic()
            while in_flight:
                fd = next(iter(in_flight))
                sock, index, started = in_flight[fd]
                if now < started + timeout and now < deadline:
                    break
                del in_flight[fd]
                sock.close()
                record(index, ProbeResult(TIMEOUT, now - started, "connect timed out"))
    finally:
        for sock, _, _ in in_flight.values():
            sock.close()
        epoll.close()
