"""The HTTP server in-process under hostile or unusual clients: odd Content-Length values, HTTP/1.0 keep-alive,
floods of blank lines, `Expect: 100-continue`, /metrics saturated by clients that never read, a TLS reload that
must not stall the selector thread, plain HTTP to the TLS port, and the configured headers on canned answers."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time

import pytest
import yaml

from sollol_exporter.web.protocol import Response
from sollol_exporter.web.server import Server
from tests.support.net import exchange
from tests.support.tls import make_certificates, tls_section

LOOP = "127.0.0.1"
BIG = b"x" * (48 << 20)  # more than loopback's socket buffers hold: a client that never reads holds the worker


def handle(request):
    if request.path == "/metrics":
        return Response(200, body=BIG)
    return Response(200, body=b"Healthy.\n")


@pytest.fixture
def serve():
    started = []

    def start(handler=handle, **kwargs):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOP, 0))
        listener.listen(128)
        server = Server([listener], handler, **kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return listener.getsockname()[1]

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def read_head(sock: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def test_a_non_ascii_digit_content_length_is_a_400_and_no_error(serve, caplog):
    port = serve()
    with caplog.at_level(logging.ERROR):
        for value in (b"\xb2", b"\xb9", b"1\xb2", b"+1", b" 1 1"):
            reply = exchange(port, b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 400"), (value, reply[:80])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_http_1_0_keep_alive_is_announced_when_kept(serve):
    port = serve()
    with socket.create_connection((LOOP, port), timeout=3) as sock:
        sock.sendall(b"GET /-/healthy HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        head = read_head(sock)
        assert head.startswith(b"HTTP/1.1 200") and b"\r\nConnection: keep-alive\r\n" in head, head
        sock.sendall(b"GET /-/healthy HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")  # and it is kept
        assert read_head(sock).startswith(b"HTTP/1.1 200")
    reply = exchange(port, b"GET /-/healthy HTTP/1.0\r\n\r\n")  # without keep-alive: closed, as before
    assert b"Connection: close" in reply and b"keep-alive" not in reply


def test_leading_blank_lines_are_dropped_and_a_flood_of_them_closes_the_connection(serve):
    port = serve(header_timeout=8)
    # a few empty lines before a request are allowed (RFC 9112 2.2)
    assert exchange(port, b"\r\n\r\n\n" + b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n", wait=2).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    with socket.create_connection((LOOP, port), timeout=6) as sock:
        closed = False
        try:
            for _ in range(200):
                sock.sendall(b"\r\n" * 32)
                time.sleep(0.005)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        if not closed:
            try:
                closed = sock.recv(4096) == b""
            except ConnectionResetError:
                closed = True
    assert closed and time.monotonic() - started < 5  # well before the 8 s head timeout


def test_expect_100_continue_is_answered_before_the_body(serve):
    port = serve()
    with socket.create_connection((LOOP, port), timeout=3) as sock:
        sock.sendall(b"POST /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert read_head(sock).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        assert read_head(sock).startswith(b"HTTP/1.1 200")


def test_health_is_served_while_metrics_fills_max_requests(serve):
    port = serve(max_requests=2)
    hogs = []
    try:
        for _ in range(4):  # /metrics clients that never read their answer
            sock = socket.create_connection((LOOP, port), timeout=5)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            hogs.append(sock)
        time.sleep(0.5)
        assert exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", wait=2).startswith(b"HTTP/1.1 503")  # still capped
        for path in (b"/-/healthy", b"/-/ready", b"/"):
            reply = exchange(port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", wait=2)
            assert reply.startswith(b"HTTP/1.1 200"), (path, reply[:80])
    finally:
        for sock in hogs:
            sock.close()


def test_a_pipelined_metrics_request_after_health_still_takes_a_metrics_slot(serve):
    port = serve(max_requests=1)
    hog = socket.create_connection((LOOP, port), timeout=5)
    try:
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        reply = exchange(port, b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", wait=2)
        assert reply.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 503" in reply, reply[:300]
    finally:
        hog.close()


# -- behind a web config: TLS reloads, plain HTTP to the TLS port, headers on canned answers -----------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


def web_server(tmp_path, web: dict, serve_http):
    from sollol_exporter.web.routes import serve as serve_exporter
    from sollol_exporter.web.watch import WebConfigWatcher

    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(web))
    watcher = WebConfigWatcher(str(path))
    with socket.socket() as probe:
        probe.bind((LOOP, 0))
        port = probe.getsockname()[1]
    server = serve_exporter(None, f"{LOOP}:{port}", watcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    serve_http.append(server)
    return port, path, watcher


@pytest.fixture
def exporters():
    started = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def tls_client(certs) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca))


def test_a_slow_tls_reload_does_not_stall_handshakes(tmp_path, certs, exporters, monkeypatch):
    from sollol_exporter.web import watch

    port, path, _ = web_server(tmp_path, {"tls_server_config": tls_section(certs)}, exporters)
    real_load = watch.load

    def slow_load(name):
        time.sleep(3)
        return real_load(name)

    monkeypatch.setattr(watch, "load", slow_load)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    started = time.monotonic()
    with socket.create_connection((LOOP, port), timeout=10) as raw, tls_client(certs).wrap_socket(raw, server_hostname="localhost"):
        pass
    assert time.monotonic() - started < 1.5  # the handshake used the last good context, not waiting for the reload


def test_a_fifo_in_place_of_the_certificate_keeps_the_tls_server_answering(tmp_path, certs, exporters):
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_bytes(certs.server.cert.read_bytes())
    key.write_bytes(certs.server.key.read_bytes())
    port, _, watcher = web_server(tmp_path, {"tls_server_config": {"cert_file": str(cert), "key_file": str(key)}}, exporters)
    cert.unlink()
    os.mkfifo(cert)
    for _ in range(3):
        with socket.create_connection((LOOP, port), timeout=5) as raw, tls_client(certs).wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_head(sock).startswith(b"HTTP/1.1 200")
    assert watcher.failed_signature is not None


def test_plain_http_to_the_tls_port_gets_the_go_answer(tmp_path, certs, exporters):
    port, _, _ = web_server(tmp_path, {"tls_server_config": tls_section(certs)}, exporters)
    reply = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.0 400 Bad Request\r\n") and b"Client sent an HTTP request to an HTTPS server." in reply, reply
    # and TLS still works
    with socket.create_connection((LOOP, port), timeout=5) as raw, tls_client(certs).wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_head(sock).startswith(b"HTTP/1.1 200")


def test_canned_answers_carry_the_configured_headers(tmp_path, exporters):
    port, _, _ = web_server(tmp_path, {"http_server_config": {"headers": {"X-Frame-Options": "deny"}}}, exporters)
    for data in (b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 500 + b"\r\n"):
        reply = exchange(port, data)
        assert reply.startswith(b"HTTP/1.1 4") and b"\r\nX-Frame-Options: deny\r\n" in reply, reply[:300]
