"""Timeouts and the connection cap of the HTTP server, in process with short limits so that the test is quick."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from sollol_exporter.web.protocol import Response
from sollol_exporter.web.routes import listen_socket
from sollol_exporter.web.server import Server

LOOP = "127.0.0.1"


@pytest.fixture
def server_factory():
    servers = []

    def start(**options):
        server = Server([listen_socket(LOOP, 0)], lambda request: Response(200, body=b"ok\n"), **options)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server, server.listeners[0].getsockname()[1]

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_idle_keep_alive_connections_are_closed(server_factory):
    _, port = server_factory(idle_timeout=0.5)
    with socket.create_connection((LOOP, port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert closed_within(sock, 3)
        assert 0.3 < time.monotonic() - started < 2


def test_silent_and_slow_connections_are_closed_after_the_header_timeout(server_factory):
    _, port = server_factory(header_timeout=0.5)
    silent = socket.create_connection((LOOP, port), timeout=5)
    slow = socket.create_connection((LOOP, port), timeout=5)
    slow.sendall(b"GET / HTTP/1.1\r\n")
    started = time.monotonic()
    assert closed_within(silent, 3) and closed_within(slow, 3)
    assert time.monotonic() - started < 2
    silent.close()
    slow.close()


def test_the_connection_cap_evicts_the_oldest_idle_connection(server_factory):
    _, port = server_factory(max_connections=10)
    socks = [socket.create_connection((LOOP, port), timeout=5) for _ in range(10)]
    time.sleep(0.2)
    newcomer = socket.create_connection((LOOP, port), timeout=5)
    assert closed_within(socks[0], 2)  # the oldest went
    newcomer.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert newcomer.recv(4096).startswith(b"HTTP/1.1 200")
    for sock in [*socks, newcomer]:
        sock.close()


def test_thousand_idle_connections_use_no_extra_threads(server_factory):
    before = threading.active_count()
    _, port = server_factory()
    socks = [socket.create_connection((LOOP, port), timeout=5) for _ in range(1000)]
    try:
        time.sleep(0.3)
        assert threading.active_count() <= before + 2  # the selector thread (and at most one worker)
    finally:
        for sock in socks:
            sock.close()
