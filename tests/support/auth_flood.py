"""Clients that send wrong passwords as fast as the server answers them, for the basic-auth tests and the HTTP
benchmark. Raw sockets, so that an attacker costs the test process little CPU; each one binds to a loopback
source address of its own choosing (127.0.0.0/8 is all loopback), so that tests can play several hosts."""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
from collections import Counter


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request(port: int, path: str, authorization: str | None, source: str = "127.0.0.1", timeout: float = 30) -> tuple[int | str, float]:
    """(status or error name, seconds) of one request on a new connection from `source`."""
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if authorization:
        head += f"Authorization: {authorization}\r\n"
    started = time.monotonic()
    try:
        with socket.socket() as sock:
            sock.settimeout(timeout)
            sock.bind((source, 0))
            sock.connect(("127.0.0.1", port))
            sock.sendall((head + "\r\n").encode())
            reply = b""
            while b"\r\n" not in reply and (chunk := sock.recv(4096)):
                reply += chunk
            while sock.recv(65536):  # the whole answer, so that the server never writes to a closed socket
                pass
    except OSError as err:
        return type(err).__name__, time.monotonic() - started
    status = reply.split(b" ", 2)[1] if reply.startswith(b"HTTP/") else b""
    return (int(status) if status.isdigit() else "no answer"), time.monotonic() - started


class WrongPasswords:
    """`count` clients, each sending a request with a fresh random password and, once it is answered, the next."""

    def __init__(self, port: int, count: int, path: str = "/metrics", user: str = "prometheus", source: str = "127.0.0.1"):
        self.port, self.count, self.path, self.user, self.source = port, count, path, user, source
        self.statuses: Counter = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> WrongPasswords:
        for _ in range(self.count):
            thread = threading.Thread(target=self._attack, daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(35)

    def _attack(self) -> None:
        while not self.stopping.is_set():
            status, _ = request(self.port, self.path, basic(self.user, os.urandom(12).hex()), self.source)
            with self.lock:
                self.statuses[status] += 1
