"""The server's own loop around the reader, in process on loopback: what a worker does after a request, and how a
failure anywhere is logged (one error line; its traceback only when debug logging is on)."""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from sollol_exporter.web.protocol import Refusal, Response
from sollol_exporter.web.server import Server
from tests.support.net import exchange

LOOP = "127.0.0.1"


@pytest.fixture
def serve():
    started = []

    def start(handle=lambda request: Response(200, body=b"ok\n"), **options) -> int:
        listener = socket.socket()
        listener.bind((LOOP, 0))
        listener.listen(64)
        server = Server([listener], handle, **options)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        return listener.getsockname()[1]

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(5)


def broken(*_args, **_kwargs):
    raise RuntimeError("broken on purpose")


def records(caplog, message: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage() == message]


def test_a_pipelined_request_after_a_body_and_an_empty_line_is_served(serve):
    port = serve()
    reply = exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\r\n"
                           b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.count(b"HTTP/1.1 200 OK") == 2, reply


@pytest.mark.parametrize("level, traceback", [(logging.DEBUG, True), (logging.INFO, False)])
def test_a_failing_handler_is_a_503_and_its_traceback_is_logged_at_debug_level(serve, caplog, level, traceback):
    port = serve(broken)
    with caplog.at_level(level, logger="sollol_exporter"):
        assert exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 503")
    [record] = records(caplog, "request failed")
    assert record.levelno == logging.ERROR and bool(record.exc_info) is traceback
    assert record.fields["error"] == "RuntimeError: broken on purpose"


@pytest.mark.parametrize("level, traceback", [(logging.DEBUG, True), (logging.INFO, False)])
def test_a_failing_admission_check_is_a_503_and_its_traceback_is_logged_at_debug_level(serve, caplog, level, traceback):
    class Broken:
        admit = staticmethod(broken)

        def close(self):
            pass

    port = serve(admission=Broken())
    with caplog.at_level(level, logger="sollol_exporter"):
        assert exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 503")
    [record] = records(caplog, "admission check failed")
    assert bool(record.exc_info) is traceback


def test_configured_headers_that_fail_leave_the_answer_and_a_debug_traceback(serve, caplog):
    port = serve(headers=broken)
    with caplog.at_level(logging.DEBUG, logger="sollol_exporter"):
        reply = exchange(port, b"GET / HTTP/1.1\r\n\r\n")  # no Host: a canned 400
    assert reply.startswith(b"HTTP/1.1 400") and b"Connection: close" in reply
    [record] = records(caplog, "configured headers left out of an answer")
    assert record.levelno == logging.DEBUG and record.exc_info


def test_a_refusal_from_the_admission_check_carries_its_headers(serve):
    class Refuse:
        def admit(self, request, peer, resume):
            return Refusal(401, "Unauthorized", (("WWW-Authenticate", "Basic"),))

        def close(self):
            pass

    port = serve(admission=Refuse())
    reply = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 401") and b"\r\nWWW-Authenticate: Basic\r\n" in reply
