"""Loopback helpers shared by the test support modules."""

from __future__ import annotations

import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refusing_port() -> socket.socket:
    """A loopback port that refuses connections for as long as the returned socket is open: bound, never listening,
    and without SO_REUSEADDR, so that no test running beside this one can start a server on it (a port from
    free_port() can be taken meanwhile). Close it when done."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout} s")
        time.sleep(interval)


class _Listener(socket.socket):
    fillers: list


def full_listener() -> tuple[socket.socket, int]:
    """A listening socket that never accepts, with its accept queue already full: further connects time out,
    exactly like an rpc-server whose single client slot and two-entry queue are taken."""
    listener = _Listener()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.settimeout(0.3)
        try:
            filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        except OSError:
            filler.close()
            break
    listener.fillers = fillers  # kept open for as long as the listener lives
    return listener, port


def close_listener(listener: socket.socket) -> None:
    for filler in getattr(listener, "fillers", []):
        filler.close()
    listener.close()


def stop_process(process, timeout: float = 10) -> None:
    """Stop a child by its PID: SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def exchange(port: int, data: bytes, wait: float = 3.0, family=socket.AF_INET, host: str = "127.0.0.1") -> bytes:
    """Send raw bytes, then read until the server closes or `wait` seconds pass without data."""
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(wait)
        sock.connect((host, port))
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return received
