"""GET with one total deadline: connect, headers and body together, however slowly a peer trickles bytes.

A per-read timeout is not enough: a peer that sends one byte a second never lets a read time out. So every
connection is also registered with a watchdog thread that shuts the socket down when its deadline passes,
which ends whatever read is blocked on it. Bodies are bounded in size. No proxies, no redirects.
"""

from __future__ import annotations

import base64
import heapq
import http.client
import itertools
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sollol_exporter import __version__, resolver

MAX_BODY_BYTES = 4 * 1_048_576
USER_AGENT = f"sollol-exporter/{__version__}"


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict


NO_TIME_LEFT = "no time left in the scrape budget"


class FetchError(Exception):
    """`kind` is refused, timeout, dns_error, too_large or error. The message never holds the URL."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.connected = False  # the peer accepted the connection before it failed


class _Watchdog:
    """Shuts down sockets whose deadline has passed; one thread for the whole process."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._sockets: dict[int, socket.socket] = {}
        self._ids = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, deadline: float) -> int:
        with self._wake:
            token = next(self._ids)
            self._sockets[token] = sock
            heapq.heappush(self._heap, (deadline, token))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-watchdog", daemon=True)
                self._thread.start()
            self._wake.notify()
            return token

    def release(self, token: int) -> None:
        with self._wake:
            self._sockets.pop(token, None)

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and self._heap[0][1] not in self._sockets:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                deadline, token = self._heap[0]
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._wake.wait(remaining)
                    continue
                heapq.heappop(self._heap)
                sock = self._sockets.pop(token, None)
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


_WATCHDOG = _Watchdog()
_TLS: ssl.SSLContext | None = None  # made on the first https read: most clusters have none, and it costs memory


def _tls() -> ssl.SSLContext:
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


def fetch(url: str, timeout: float, headers: dict | None = None) -> Response:
    """GET url; the whole exchange, body included, must finish within `timeout` seconds."""
    if timeout <= 0:
        raise FetchError("timeout", NO_TIME_LEFT)
    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    request_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if parts.username is not None or parts.password is not None:
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
        request_headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    request_headers.update(headers or {})
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sock = _connect(host, port, deadline)
    # The watchdog holds a duplicate: shutting it down ends reads on the connection even after TLS has taken over
    # the original socket object.
    try:
        watched = sock.dup()
    except OSError as err:
        sock.close()
        raise FetchError("error", f"connection failed: {err.strerror or type(err).__name__}") from None
    token = _WATCHDOG.watch(watched, deadline)
    try:
        return _exchange(sock, parts.scheme, host, port, target, request_headers, deadline)
    except FetchError as err:
        err.connected = True
        raise
    finally:
        _WATCHDOG.release(token)
        watched.close()
        sock.close()


def _connect(host: str, port: int, deadline: float) -> socket.socket:
    """A connection to host:port made by `deadline`, the name looked up within it too (resolver.py)."""
    try:
        addresses = resolver.shared().resolve(host, port, deadline)
    except resolver.LookupTimeout:
        raise FetchError("timeout", "name resolution timed out") from None
    except (socket.gaierror, UnicodeError):
        raise FetchError("dns_error", "name resolution failed") from None
    except OSError as err:
        raise FetchError("error", f"name resolution failed: {err.strerror or type(err).__name__}") from None
    failure: FetchError | None = None
    for family, kind, proto, _, address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(remaining)
            sock.connect(address)
            return sock
        except ConnectionRefusedError:
            failure = FetchError("refused", "connection refused")
        except TimeoutError:
            failure = FetchError("timeout", "connect timed out")
        except OSError as err:
            failure = FetchError("error", f"connection failed: {err.strerror or type(err).__name__}")
        sock.close()
    raise failure or FetchError("timeout", "connect timed out")


def _exchange(sock: socket.socket, scheme: str, host: str, port: int, target: str, headers: dict, deadline: float) -> Response:
    connection = http.client.HTTPConnection(host, port)
    try:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        sock = _tls().wrap_socket(sock, server_hostname=host) if scheme == "https" else sock
        connection.sock = sock
        connection.request("GET", target, headers=headers)
        reply = connection.getresponse()
        length = reply.getheader("Content-Length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise FetchError("too_large", f"response larger than {MAX_BODY_BYTES} bytes")
        chunks, size = [], 0
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = reply.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise FetchError("too_large", f"response larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        if time.monotonic() > deadline:
            raise FetchError("timeout", "response too slow")
        if reply.length:  # the peer closed before Content-Length bytes: a truncated body is not relayed as whole
            raise FetchError("error", "response truncated")
        return Response(reply.status, b"".join(chunks), {k.lower(): v for k, v in reply.getheaders()})
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError("timeout", "read timed out") from None
    except ssl.SSLError as err:
        if time.monotonic() >= deadline or "timed out" in str(err):  # a handshake that never finishes: hung, not refused
            raise FetchError("timeout", "TLS handshake timed out") from None
        raise FetchError("error", f"TLS: {err.reason or type(err).__name__}") from None
    except (http.client.HTTPException, OSError, ValueError) as err:
        if time.monotonic() >= deadline:
            raise FetchError("timeout", "response too slow") from None
        raise FetchError("error", f"bad response: {type(err).__name__}") from None
    finally:
        connection.close()
        if sock is not None and scheme == "https":
            sock.close()
