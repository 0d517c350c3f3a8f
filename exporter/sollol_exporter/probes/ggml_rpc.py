"""The ggml RPC handshake: protocol version, device count and memory per device, read from an rpc-server.

Opt-in (`probe: ggml`, or `handshake: idle` for workers whose coordinators are all down). A worker that a
coordinator holds queues the connection and answers only when the coordinator leaves, so a handshake that gets no
reply is aborted, never closed normally, and the worker is backed off to connect-and-close. The rules (docs/peers.md#handshake, #probe-hazards, #safe-probes):
  - HELLO in the current layout (protocol >= 4: 24-byte payload), and on a silent close the older one (empty);
  - DEVICE_COUNT, then GET_DEVICE_MEMORY for each device below the count, never past it;
  - every reply is read before the socket is closed;
  - when a reply does not come, the socket is aborted with RST (SO_LINGER 0). A normal close would leave the
    request queued; the worker would answer it later into a closed socket and die of SIGPIPE.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sollol_exporter.addresses import Address
from sollol_exporter.probes import BUSY, ERROR, OK, REFUSED, TIMEOUT, UNREACHABLE, ProbeResult, Target, blocking

HELLO, DEVICE_COUNT, GET_DEVICE_MEMORY = 14, 15, 11
MAX_DEVICES = 64
MAX_THREADS = 16  # handshakes at once in one call
PROTOCOL_ERROR = ERROR


class _Silent(Exception):
    """The worker closed the connection without answering."""


class _NoReply(Exception):
    """No reply within the deadline."""


@dataclass
class Handshake:
    outcome: str
    duration: float
    detail: str = ""
    version: str = ""
    devices: list[tuple[int, int]] = field(default_factory=list)  # (free, total) bytes per device

    def result(self) -> ProbeResult:
        return ProbeResult(self.outcome, self.duration, self.detail, self.version, tuple(self.devices))


def _request(command: int, payload: bytes = b"") -> bytes:
    return struct.pack("<BQ", command, len(payload)) + payload


def _abort(sock: socket.socket) -> None:
    if sock.fileno() == -1:  # closed already: the reconnect after a silent close failed
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_exactly(sock: socket.socket, size: int, deadline: float) -> bytes:
    data = b""
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _NoReply()
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(size - len(data))
        except TimeoutError:
            raise _NoReply() from None
        except ConnectionResetError:
            raise _Silent() from None
        if not chunk:
            raise _Silent()
        data += chunk
    return data


def _reply(sock: socket.socket, expected: int, deadline: float) -> bytes:
    (length,) = struct.unpack("<Q", _read_exactly(sock, 8, deadline))
    if length != expected:
        raise ValueError(f"reply of {length} bytes, expected {expected}")
    return _read_exactly(sock, length, deadline)


def _connect(address: Address, deadline: float) -> socket.socket:
    sock = socket.create_connection((address.host, address.port), timeout=max(0.001, deadline - time.monotonic()))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def probe_one(address: Address, timeout: float) -> Handshake:
    started = time.monotonic()
    deadline = started + timeout
    result = Handshake(OK, 0.0)
    try:
        sock = _connect(address, deadline)
    except ConnectionRefusedError:
        return Handshake(REFUSED, time.monotonic() - started, "connection refused")
    except TimeoutError:
        return Handshake(TIMEOUT, time.monotonic() - started, "connect timed out")
    except OSError as err:
        return Handshake(UNREACHABLE, time.monotonic() - started, err.strerror or "unreachable")
    try:
        try:
            sock.sendall(_request(HELLO, bytes(24)))
            major, minor, patch = _reply(sock, 28, deadline)[:3]
        except _Silent:
            # A server older than protocol 4 closes on the 24-byte payload: ask again the old way.
            sock.close()
            sock = _connect(address, deadline)
            try:
                sock.sendall(_request(HELLO))
                major, minor, patch = _reply(sock, 3, deadline)
            except _Silent:
                sock.close()
                return Handshake(OK, time.monotonic() - started, "no HELLO: build older than b5150", version="legacy")
        result.version = f"{major}.{minor}.{patch}"
        if major >= 3:
            sock.sendall(_request(DEVICE_COUNT))
            (count,) = struct.unpack("<I", _reply(sock, 4, deadline))
            if count > MAX_DEVICES:
                raise ValueError(f"{count} devices")
            for device in range(count):
                sock.sendall(_request(GET_DEVICE_MEMORY, struct.pack("<I", device)))
                free, total = struct.unpack("<QQ", _reply(sock, 16, deadline))
                result.devices.append((free, total))
        else:
            sock.sendall(_request(GET_DEVICE_MEMORY))
            free, total = struct.unpack("<QQ", _reply(sock, 16, deadline))
            result.devices.append((free, total))
        sock.close()  # every reply has been read: a normal close is safe
    except _NoReply:
        _abort(sock)
        stage = "HELLO" if not result.version else "a reply"
        outcome = BUSY if not result.version else PROTOCOL_ERROR
        return Handshake(outcome, time.monotonic() - started, f"no answer to {stage}: aborted with RST")
    except (_Silent, ValueError, OSError) as err:
        _abort(sock)
        return Handshake(PROTOCOL_ERROR, time.monotonic() - started, f"protocol error: {err or 'closed'}", version=result.version)
    result.duration = time.monotonic() - started
    return result


def probe_all(
    targets: Iterable[Target], timeout: float, deadline: float, *, limit: int = MAX_THREADS,
    report: Callable[[Target, ProbeResult], None] | None = None,
) -> dict[Target, ProbeResult]:
    """The handshake with each target at target.connect_to, `limit` at a time (at most MAX_THREADS)."""
    return blocking.probe_each(targets, _handshake, timeout, deadline, limit=min(limit, MAX_THREADS), thread_name="ggml-probe",
                               report=report)


def _handshake(target: Target, timeout: float) -> ProbeResult:
    return probe_one(target.connect_to, timeout).result()


# First llama.cpp build of each RPC protocol version (docs/peers.md#protocol-versions): what a coordinator of a given build speaks.
_PROTOCOL_BY_BUILD = (
    (10496, (5, 1, 0)), (10176, (5, 0, 0)), (10053, (4, 0, 3)), (9970, (4, 0, 2)), (9575, (4, 0, 1)), (8802, (4, 0, 0)),
    (8277, (3, 6, 1)), (7287, (3, 6, 0)), (7183, (3, 5, 0)), (6688, (3, 0, 0)), (5187, (2, 0, 0)), (5150, (1, 0, 0)),
)


def protocol_for_build(build_info: str) -> tuple[int, int, int] | None:
    """The RPC protocol a llama-server build speaks, from /props build_info ("b4748-c392e5094"); None if unknown."""
    head = build_info.split("-", 1)[0]
    if not head.startswith("b") or not head[1:].isdigit() or int(head[1:]) == 0:
        return None
    build = int(head[1:])
    for first, version in _PROTOCOL_BY_BUILD:
        if build >= first:
            return version
    return (0, 0, 0)


def incompatible(coordinator: tuple[int, int, int], worker: tuple[int, int, int]) -> bool:
    """The coordinator refuses a worker of another major version or a newer minor one."""
    return coordinator[0] != worker[0] or worker[1] > coordinator[1]
