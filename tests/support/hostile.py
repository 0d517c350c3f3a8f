"""Peers that misbehave on purpose: an HTTP server that trickles its answers one byte at a time.

Each connection is served on its own thread and every trickle is bounded in time, so a test that forgets a
connection still ends; `stop()` closes the listener and every connection.
"""

from __future__ import annotations

import socket
import threading
import time


class TrickleRoute:
    """`head_interval` > 0 trickles the status line and headers too; `body_interval` trickles the body."""

    def __init__(self, body: bytes = b"", status: int = 200, head_interval: float = 0.0, body_interval: float = 0.0,
                 content_type: str = "text/plain; version=0.0.4", limit: float = 30.0, declared_length: int | None = None):
        self.body = body
        self.status = status
        self.head_interval = head_interval
        self.body_interval = body_interval
        self.content_type = content_type
        self.limit = limit
        self.declared_length = len(body) if declared_length is None else declared_length  # more: a truncated body


class TrickleServer:
    """`tls`: an SSLContext to serve HTTPS with (the handshake runs on the connection's own thread)."""

    def __init__(self, routes: dict[str, TrickleRoute], tls=None):
        self.routes = routes
        self.tls = tls
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if tls else 'http'}://{self.address}"
        self.connections: list[socket.socket] = []
        self.requests: list[str] = []
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            path = request.split(b" ", 2)[1].decode("latin-1").split("?", 1)[0]
            self.requests.append(path)
            route = self.routes.get(path) or TrickleRoute(b"not found", status=404)
            head = (f"HTTP/1.1 {route.status} X\r\nContent-Type: {route.content_type}\r\n"
                    f"Content-Length: {route.declared_length}\r\nConnection: close\r\n\r\n").encode()
            ends = time.monotonic() + route.limit
            self._write(conn, head, route.head_interval, ends)
            self._write(conn, route.body, route.body_interval, ends)
        except OSError:
            pass
        finally:
            conn.close()

    def _write(self, conn: socket.socket, data: bytes, interval: float, ends: float) -> None:
        if interval <= 0:
            conn.sendall(data)
            return
        for index in range(len(data)):
            if self._stopped.is_set() or time.monotonic() > ends:
                return
            conn.sendall(data[index:index + 1])
            time.sleep(interval)

    def stop(self) -> None:
        self._stopped.set()
        self.listener.close()
        for conn in self.connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
