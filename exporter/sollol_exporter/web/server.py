"""An HTTP/1.1 server that holds under load.

One selector thread owns every connection that is not in the middle of a request: it accepts, runs TLS handshakes
without blocking, and watches idle keep-alive connections, closing those that stay silent too long. It feeds what
arrives to the connection's RequestReader (h11, see protocol.py); a connection whose request head is whole (or
already wrong) is handed to a bounded pool of workers, which read the body and answer; when `max_requests` requests
for a limited path (/metrics) are under way the next one gets a quick 503 instead. Other paths (health, readiness,
the landing page) are cheap and have their own small allowance, so that slow /metrics clients never fail a liveness
probe. So 2,000 idle connections cost 2,000 sockets, not 2,000 threads.

An admission check (basic auth, see gate.py) runs before a request takes an allowance: it admits or refuses at
once, or parks the connection, holding no worker and no allowance, until its verdict comes back.
"""

from __future__ import annotations

import logging
import os
import queue
import selectors
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from sollol_exporter.logs import debug_traceback, fields
from sollol_exporter.web import protocol
from sollol_exporter.web.protocol import BadRequest, Refusal, Request, RequestReader, Response
from sollol_exporter.web.tls import peer_sans

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0  # from a connection's first byte (or its accept) to a complete request head
IDLE_TIMEOUT = 120.0  # a kept-alive connection with no new request
BODY_TIMEOUT = 10.0
WRITE_TIMEOUT = 30.0
MAX_BODY_BYTES = 64 * 1024  # bodies up to this are read and dropped; larger ones close the connection
LINGER_SECONDS = 0.5
BACKLOG = 1024  # the kernel caps it at net.core.somaxconn
OTHER_REQUESTS = 8  # concurrent requests for paths outside max_requests' limit
MAX_BLANK_BYTES = 1024  # empty lines allowed before a request line; more and the connection is closed
LIMITED_PATHS = ("/metrics",)  # as exporter-toolkit, max_requests limits only these
# Go's answer to plain HTTP on its TLS port (net/http), so that the client learns why.
PLAIN_HTTP_TO_TLS = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
_TLS_SETUP = Callable[[], "tuple[ssl.SSLContext, tuple[str, ...]]"]
OVERLOADED = Refusal(503, "too many concurrent requests, try again later", (("Retry-After", "1"),))
ADMITTED = "admitted"


class Admission(Protocol):
    def admit(self, request: Request, peer: str, resume: Callable[[Refusal | None], None]) -> Refusal | str | None:
        """None: admitted; a Refusal; or anything else: pending, and `resume(verdict)` follows from another thread."""

    def close(self) -> None:
        """Stop whatever admit started; pending requests are resumed."""


class Connection:
    __slots__ = ("closed", "deadline", "error", "handshaken", "peer", "reader", "slot", "sock", "tls", "verdict")

    def __init__(self, sock: socket.socket, peer: str, tls: bool):
        self.sock = sock
        self.peer = peer
        self.tls = tls
        self.handshaken = not tls
        self.reader = RequestReader()  # the coming request; reader.request once its head is whole
        self.error: BadRequest | None = None  # what is wrong with the coming request: a worker answers it
        self.deadline = 0.0
        self.closed = False
        self.slot: threading.BoundedSemaphore | None = None  # the allowance this connection's worker holds
        self.verdict: Refusal | str | None = None  # the admission check's answer for the coming request, once given

    @property
    def tls_sock(self) -> ssl.SSLSocket:
        """The socket, wrapped for TLS: only when `tls` is set."""
        return cast(ssl.SSLSocket, self.sock)

    def ready(self) -> bool:
        """A worker has something to answer: a whole request head, or bytes that can never become one."""
        return self.reader.request is not None or self.error is not None


class _Pool:
    """Daemon worker threads, started only when the idle ones are fewer than the jobs waiting, never more than `size`."""

    def __init__(self, size: int, name: str):
        self.size = size
        self.name = name
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.threads = 0
        self.idle = 0
        self.waiting = 0  # submitted, not yet taken by a worker

    def submit(self, job: Callable, arg) -> None:
        with self.lock:
            self.waiting += 1
            # an idle worker that has not yet taken an earlier job is not free for this one
            if self.idle < self.waiting and self.threads < self.size:
                self.threads += 1
                threading.Thread(target=self._run, name=f"{self.name}-{self.threads}", daemon=True).start()
        self.jobs.put((job, arg))

    def stop(self) -> None:
        """Let every worker end once it has finished what it is doing (none is waited for)."""
        with self.lock:
            count, self.size = self.threads, 0  # and start no new one
        for _ in range(count):
            self.jobs.put((None, None))

    def _run(self) -> None:
        while True:
            with self.lock:
                self.idle += 1
            job, arg = self.jobs.get()
            with self.lock:
                self.idle -= 1
                self.waiting -= 1
            if job is None:
                return
            job(arg)


class Server:
    def __init__(self, listeners: list[socket.socket], handle: Callable[[Request], Response], *,
                 max_requests: int = 40, max_connections: int = 4096, tls: _TLS_SETUP | None = None,
                 header_timeout: float = HEADER_TIMEOUT, idle_timeout: float = IDLE_TIMEOUT,
                 headers: Callable[[], list[tuple[str, str]]] | None = None, limited_paths: tuple[str, ...] = LIMITED_PATHS,
                 admission: Admission | None = None):
        self.listeners = listeners
        self.admission = admission  # owned: closed by server_close()
        self.parked: set[Connection] = set()  # waiting for an admission verdict; selector thread only
        self.limited_paths = limited_paths  # the paths max_requests limits (the telemetry path)
        self.handle = handle
        self.tls = tls
        self.headers = headers  # extra headers for the answers given here (400, 408, 431, 503)
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max(1, max_connections)
        self.slots = threading.BoundedSemaphore(max_requests) if max_requests > 0 else None  # limited_paths
        self.other_slots = threading.BoundedSemaphore(OTHER_REQUESTS) if max_requests > 0 else None
        self.pool = _Pool(max_requests + OTHER_REQUESTS if max_requests > 0 else self.max_connections, "http-worker")
        self.selector = selectors.DefaultSelector()
        self.idle: OrderedDict[Connection, None] = OrderedDict()  # registered with the selector, oldest first
        self.open = 0
        self.open_lock = threading.Lock()
        self.returned: queue.SimpleQueue = queue.SimpleQueue()
        self.wake_reader, self.wake_writer = socket.socketpair()
        self.wake_reader.setblocking(False)
        self.wake_writer.setblocking(False)
        self.stopping = threading.Event()
        self.stopped = threading.Event()
        self.stopped.set()
        self._last_sweep = 0.0
        for listener in listeners:
            listener.setblocking(False)

    # -- the selector thread -------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        self.stopped.clear()
        try:
            for listener in self.listeners:
                self.selector.register(listener, selectors.EVENT_READ, "listener")
            self.selector.register(self.wake_reader, selectors.EVENT_READ, "wake")
            while not self.stopping.is_set():
                for key, _ in self.selector.select(0.25):
                    try:
                        if key.data == "listener":
                            self._accept(cast(socket.socket, key.fileobj))
                        elif key.data == "wake":
                            self._drain_wake()
                        else:
                            self._readable(key.data)
                    except Exception as err:  # the loop must outlive any one connection
                        log.error("connection failed", exc_info=debug_traceback(log), extra=fields(error=f"{type(err).__name__}: {err}"[:300]))
                        if isinstance(key.data, Connection):
                            self._unwatch(key.data)
                            self._close(key.data)
                self._take_returned()
                self._sweep()
        finally:
            self.stopped.set()

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(64):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # EMFILE and friends: back off, the backlog keeps the rest
                log.warning("accept failed", extra=fields(error=str(err)))
                return
            if self.open >= self.max_connections and not self._evict_oldest_idle():
                sock.close()
                continue
            with self.open_lock:
                self.open += 1
            try:
                sock.setblocking(False)
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                tls = False
                if self.tls is not None:
                    context, _ = self.tls()
                    sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                    tls = True
            except Exception as err:
                log.error("cannot set up a connection", exc_info=debug_traceback(log), extra=fields(error=str(err)[:200]))
                self._close_socket(sock)
                continue
            connection = Connection(sock, str(address[0]) if isinstance(address, tuple) else "local", tls)
            self._watch(connection, time.monotonic() + self.header_timeout)

    def _watch(self, connection: Connection, deadline: float, events: int = selectors.EVENT_READ) -> None:
        connection.deadline = deadline
        try:
            self.selector.register(connection.sock, events, connection)
        except (ValueError, KeyError, OSError):
            self._close(connection)
            return
        self.idle[connection] = None

    def _unwatch(self, connection: Connection) -> None:
        self.idle.pop(connection, None)
        try:
            self.selector.unregister(connection.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _readable(self, connection: Connection) -> None:
        """Read what arrived without blocking; hand the connection to a worker only once a whole request head
        (or something that can never become one) is there, so that slow clients hold no worker."""
        if not connection.handshaken:
            self._handshake(connection)
            return
        reader = connection.reader
        first_bytes = not reader.started
        try:
            while True:
                chunk = connection.sock.recv(65536)
                if not chunk:
                    self._unwatch(connection)
                    self._close(connection)
                    return
                if reader.feed(chunk) is not None or not connection.tls or not connection.tls_sock.pending():
                    break
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except BadRequest as bad:
            connection.error = bad
        except (OSError, ValueError):
            self._unwatch(connection)
            self._close(connection)
            return
        if reader.blank > MAX_BLANK_BYTES:
            self._unwatch(connection)
            self._close(connection)
            return
        if first_bytes and reader.started:
            # A new connection keeps the deadline it got at accept; a kept-alive one starts its head timer now.
            connection.deadline = min(connection.deadline, time.monotonic() + self.header_timeout)
        if not connection.ready():
            return
        self._unwatch(connection)
        self._admit(connection)

    def _handshake(self, connection: Connection) -> None:
        try:
            connection.tls_sock.do_handshake()
        except ssl.SSLWantReadError:
            self.selector.modify(connection.sock, selectors.EVENT_READ, connection)
            return
        except ssl.SSLWantWriteError:
            self.selector.modify(connection.sock, selectors.EVENT_WRITE, connection)
            return
        except (ssl.SSLError, OSError, ValueError) as err:
            log.debug("TLS handshake failed", extra=fields(client=connection.peer, error=str(err)[:200]))
            if getattr(err, "reason", None) in ("HTTP_REQUEST", "HTTPS_PROXY_REQUEST"):
                self._answer_plain_http(connection)
            self._unwatch(connection)
            self._close(connection)
            return
        connection.handshaken = True
        sans = self.tls()[1] if self.tls else ()
        if sans and not (peer_sans(connection.tls_sock.getpeercert() or {}) & set(sans)):
            log.debug("client certificate has no allowed SAN", extra=fields(client=connection.peer))
            self._unwatch(connection)
            self._close(connection)
            return
        self.selector.modify(connection.sock, selectors.EVENT_READ, connection)
        if connection.tls_sock.pending():  # decrypted already: the selector cannot see it
            self._readable(connection)

    def _answer_plain_http(self, connection: Connection) -> None:
        """Plain HTTP on the TLS port: Go's 400, written beside TLS on the raw socket, without blocking."""
        try:
            raw = socket.socket(fileno=os.dup(connection.sock.fileno()))
        except (OSError, ValueError):
            return
        with raw:
            try:
                raw.setblocking(False)
                try:
                    raw.recv(protocol.MAX_HEAD_BYTES)  # the rest of the request, so that close() sends no RST
                except BlockingIOError:
                    pass
                raw.send(PLAIN_HTTP_TO_TLS)
                raw.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _admit(self, connection: Connection) -> None:
        """Dispatch the coming request once the admission check lets it through."""
        verdict, connection.verdict = connection.verdict, None
        request = connection.reader.request
        if verdict is None and self.admission is not None and connection.error is None and request is not None:
            try:
                verdict = self.admission.admit(request, connection.peer, lambda answer: self._resume(connection, answer))
            except Exception as err:
                log.error("admission check failed", exc_info=debug_traceback(log),
                          extra=fields(error=f"{type(err).__name__}: {err}"[:300]))
                verdict = OVERLOADED
            if verdict is not None and not isinstance(verdict, Refusal):
                self.parked.add(connection)
                return
        if isinstance(verdict, Refusal):
            self._refuse(connection, verdict)
        else:
            self._dispatch(connection)

    def _resume(self, connection: Connection, verdict: Refusal | None) -> None:
        """From the admission's thread: hand the parked connection back to the selector with its verdict."""
        connection.verdict = verdict if verdict is not None else ADMITTED
        self.returned.put(connection)
        try:
            self.wake_writer.send(b"x")
        except (BlockingIOError, OSError):
            pass

    def _slots_for(self, connection: Connection) -> threading.BoundedSemaphore | None:
        request = connection.reader.request
        limited = connection.error is None and request is not None and request.path in self.limited_paths
        return self.slots if limited else self.other_slots

    def _dispatch(self, connection: Connection) -> None:
        slots = self._slots_for(connection)
        if slots is None or slots.acquire(blocking=False):
            connection.slot = slots
            self.pool.submit(self._work, connection)
        else:
            self._refuse(connection, OVERLOADED)

    def _refuse(self, connection: Connection, refusal: Refusal) -> None:
        """Answer from this thread without blocking, and close: all workers busy, or the admission check said no."""
        sock = connection.sock
        try:
            sock.setblocking(False)
            try:
                sock.recv(protocol.MAX_HEAD_BYTES)  # what the client already sent, so that close() sends no RST
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            sock.send(self._canned(refusal.status, refusal.message, list(refusal.headers)))
        except (OSError, ValueError):
            pass
        log.debug("request refused", extra=fields(client=connection.peer, status=refusal.status))
        self._close(connection)

    def _drain_wake(self) -> None:
        try:
            while self.wake_reader.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _take_returned(self) -> None:
        while True:
            try:
                connection = self.returned.get_nowait()
            except queue.Empty:
                return
            self.parked.discard(connection)
            try:
                connection.sock.setblocking(False)
            except OSError:
                self._close(connection)
                continue
            if connection.ready():  # parked, or a request the worker left: it needs an allowance
                connection.deadline = time.monotonic() + self.header_timeout
                self._admit(connection)
                continue
            timeout = self.header_timeout if connection.reader.started else self.idle_timeout
            self._watch(connection, time.monotonic() + timeout)

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < 0.25:
            return
        self._last_sweep = now
        for connection in [c for c in self.idle if c.deadline <= now]:
            self._unwatch(connection)
            if connection.reader.started and connection.handshaken:  # half a request head: say why before closing
                try:
                    connection.sock.send(self._canned(408, "request head not received in time"))
                except (OSError, ValueError):
                    pass
            self._close(connection)

    def _evict_oldest_idle(self) -> bool:
        if not self.idle:
            return False
        oldest = next(iter(self.idle))
        self._unwatch(oldest)
        self._close(oldest)
        return True

    # -- worker threads ------------------------------------------------------------------------------------

    def _work(self, connection: Connection) -> None:
        keep = False
        try:
            keep = self._serve(connection)
        except Exception as err:  # never let one connection take a worker down
            log.error("connection failed", exc_info=debug_traceback(log),
                      extra=fields(client=connection.peer, error=f"{type(err).__name__}: {err}"[:300]))
        finally:
            if connection.slot is not None:
                connection.slot.release()
                connection.slot = None
        if keep and not self.stopping.is_set():
            self.returned.put(connection)
            try:
                self.wake_writer.send(b"x")
            except (BlockingIOError, OSError):
                pass
        else:
            self._close(connection)

    def _serve(self, connection: Connection) -> bool:
        """Answer the requests already on this connection; True if it stays open for more."""
        while True:
            if connection.error is not None:
                log.debug("bad request", extra=fields(client=connection.peer, error=connection.error.message))
                self._send_raw(connection, self._canned(connection.error.status, connection.error.message))
                self._linger(connection)
                return False
            request = connection.reader.request
            assert request is not None  # a connection is served once its request head is whole or it has an error
            body_read = self._read_body(connection, request)
            try:
                response = self.handle(request)
            except Exception as err:
                log.error("request failed", exc_info=debug_traceback(log),
                          extra=fields(path=request.path[:200], error=f"{type(err).__name__}: {err}"[:300]))
                response = Response(503, body=b"temporarily unable to answer; see the exporter log\n")
            keep = body_read and request.keep_alive and not self.stopping.is_set()
            if not self._write(connection, request, response, keep):
                return False
            if not keep:
                self._linger(connection)
                return False
            if not self._next_request(connection):
                return False
            if not connection.ready():
                return True  # the selector waits for the rest
            if self.admission is not None or self._slots_for(connection) is not connection.slot:
                return True  # to be admitted, or under another allowance: the selector dispatches it again

    def _next_request(self, connection: Connection) -> bool:
        """Start reading the next request from what the last one left; False if the connection must close."""
        leftover = connection.reader.leftover()
        reader = connection.reader = RequestReader()
        try:
            if leftover:
                reader.feed(leftover)
            while connection.tls and reader.request is None and connection.tls_sock.pending():
                reader.feed(connection.sock.recv(65536))  # decrypted already: the selector cannot see it
        except BadRequest as bad:
            connection.error = bad
        except (OSError, ValueError):
            return False
        return reader.blank <= MAX_BLANK_BYTES

    def _read_body(self, connection: Connection, request: Request) -> bool:
        """Read and drop a request body; False when it cannot be read whole, so the connection must close."""
        if request.chunked or request.content_length > MAX_BODY_BYTES:
            return False
        if not request.content_length:
            return True
        reader = connection.reader
        deadline = time.monotonic() + BODY_TIMEOUT
        continued = False
        try:
            while reader.body_pending():
                if reader.expects_continue and not continued:
                    if not self._send_raw(connection, b"HTTP/1.1 100 Continue\r\n\r\n"):
                        return False
                    continued = True
                chunk = self._recv(connection, deadline)
                if not chunk:
                    return False
                reader.feed(chunk)
        except BadRequest:
            return False
        return True

    def _recv(self, connection: Connection, deadline: float) -> bytes | None:
        """Bytes read before the deadline: b"" on end of stream, None on timeout or error."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            connection.sock.settimeout(remaining)
            return connection.sock.recv(65536)
        except TimeoutError:
            return None
        except (OSError, ValueError):
            return b""

    def _write(self, connection: Connection, request: Request, response: Response, keep: bool) -> bool:
        headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body))), *response.headers]
        if not keep:
            headers.append(("Connection", "close"))
        elif request.version < (1, 1):  # an HTTP/1.0 client closes its side only when told the connection stays
            headers.append(("Connection", "keep-alive"))
        data = protocol.response_head(response.status, headers)
        if request.method != "HEAD":
            data += response.body
        log.debug("http request", extra=fields(client=connection.peer, method=request.method, path=request.path[:200], status=response.status))
        return self._send_raw(connection, data)

    def _send_raw(self, connection: Connection, data: bytes) -> bool:
        deadline = time.monotonic() + WRITE_TIMEOUT
        view = memoryview(data)
        try:
            while view:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                connection.sock.settimeout(remaining)
                sent = connection.sock.send(view[:262144])
                view = view[sent:]
        except (OSError, ValueError):
            return False
        return True

    def _linger(self, connection: Connection) -> None:
        """Half-close and read what the client still sends for a moment, so that closing does not reset the
        connection before the client has read our answer."""
        try:
            if connection.tls:
                return  # a TLS close_notify exchange is not worth a worker's time; the answer is already sent
            connection.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            received = 0
            while received < 1 << 20:
                chunk = self._recv(connection, deadline)
                if not chunk:
                    return
                received += len(chunk)
        except (OSError, ValueError):
            pass

    # -- shared --------------------------------------------------------------------------------------------

    def _canned(self, status: int, message: str, extra: Sequence[tuple[str, str]] = ()) -> bytes:
        try:
            configured = self.headers() if self.headers else []
        except Exception:  # the answer matters more than its extra headers
            log.debug("configured headers left out of an answer", exc_info=True)
            configured = []
        return protocol.canned(status, message, [*extra, *configured])

    def _close(self, connection: Connection) -> None:
        if not connection.closed:
            connection.closed = True
            self._close_socket(connection.sock)

    def _close_socket(self, sock: socket.socket) -> None:
        try:
            sock.close()
        except OSError:
            pass
        with self.open_lock:
            self.open -= 1

    def shutdown(self) -> None:
        self.stopping.set()
        try:
            self.wake_writer.send(b"x")
        except OSError:
            pass
        self.stopped.wait(5)

    def server_close(self) -> None:
        self.pool.stop()
        if self.admission is not None:
            self.admission.close()
        for connection in list(self.idle):
            self._unwatch(connection)
            self._close(connection)
        for connection in list(self.parked):
            self._close(connection)
        self.parked.clear()
        for listener in self.listeners:
            try:
                self.selector.unregister(listener)
            except (KeyError, ValueError):
                pass
            listener.close()
        self.selector.close()
        self.wake_reader.close()
        self.wake_writer.close()
