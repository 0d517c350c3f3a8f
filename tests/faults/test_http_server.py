"""The HTTP server under hostile clients: malformed and legacy requests, bodies, encodings, floods of idle
connections, concurrency beyond --web.max-requests. The exporter runs as users run it, as a subprocess."""

from __future__ import annotations

import gzip
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.collect import base_config
from tests.support.net import exchange, free_port, stop_process, wait_for
from tests.support.replay import ReplayServer, Route

LOOP = "127.0.0.1"


@pytest.fixture
def exporter(start_exporter, redis_db):
    return start_exporter(base_config(redis_db.url, ollama={"discover": False}))


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def test_http_0_9_request_gets_400_at_once(exporter):
    started = time.monotonic()
    reply = exchange(exporter.port, b"GET /metrics\r\n", wait=5)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:100]
    assert time.monotonic() - started < 3


def test_http_1_1_without_host_gets_400(exporter):
    assert exchange(exporter.port, b"GET /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400")
    # HTTP/1.0 needs no Host
    assert exchange(exporter.port, b"GET /-/healthy HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200")


def test_a_body_on_a_kept_alive_connection_is_never_read_as_a_request(exporter):
    smuggled = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    request = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(smuggled), smuggled)
    with socket.create_connection((LOOP, exporter.port), timeout=3) as sock:
        sock.sendall(request)
        time.sleep(0.5)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 405") and first.count(b"HTTP/1.1") == 1, first
        sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection is still usable
        second = sock.recv(65536)
        assert second.startswith(b"HTTP/1.1 200"), second
    # a chunked or too large body is not read: the answer closes the connection
    for head in (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                 b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"):
        reply = exchange(exporter.port, head + smuggled)
        assert reply.count(b"HTTP/1.1") == 1 and b"Connection: close" in reply, reply


def test_malformed_requests_get_4xx_never_500_and_no_trace(exporter):
    hostile = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello to a plain port
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n",
        b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        # a folded line with no field before it; a fold after a field is joined with a space, as Go's net/http
        # does and RFC 9112 5.2 allows (tests/web/test_protocol.py)
        b"GET / HTTP/1.1\r\n folded: header\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 500 + b"\r\n",
        b"GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\xff\xfe\xfd\r\n\r\n",
        b"GET  /  HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    for data in hostile:
        reply = exchange(exporter.port, data)
        status = reply[9:12]
        assert reply.startswith(b"HTTP/1.1 4") or reply.startswith(b"HTTP/1.1 505"), (data[:40], reply[:80])
        assert b"Traceback" not in reply and status != b"500"
    assert requests.get(exporter.url + "/-/healthy", timeout=5).status_code == 200
    assert "Traceback" not in exporter.read_log()


@pytest.mark.parametrize("accept_encoding, gzipped", [
    ("gzip", True), ("gzip;q=0", False), ("GZIP;q=0.000", False), ("identity;q=0, gzip", True), ("gzip;q=0.5, identity", False),
    ("*", True), ("deflate, br", False), ("", False), ("gzip;q=bogus", False), ("x-gzip", True), ("*;q=0, identity", False),
])
def test_accept_encoding_is_negotiated_with_q_values(exporter, accept_encoding, gzipped):
    reply = requests.get(exporter.url + "/metrics", headers={"Accept-Encoding": accept_encoding}, timeout=10, stream=True)
    assert reply.status_code == 200
    assert reply.headers.get("Vary") == "Accept-Encoding"
    body = reply.raw.read()
    assert (reply.headers.get("Content-Encoding") == "gzip") is gzipped
    assert b"sollol_redis_up" in (gzip.decompress(body) if gzipped else body)


def test_no_acceptable_encoding_is_406(exporter):
    for header in ("identity;q=0", "*;q=0", "gzip;q=0, identity;q=0"):
        assert requests.get(exporter.url + "/metrics", headers={"Accept-Encoding": header}, timeout=10).status_code == 406


def test_listen_backlog_is_at_least_128(exporter):
    listing = subprocess.run(["ss", "-Hltn", f"sport = :{exporter.port}"], capture_output=True, text=True, check=True).stdout
    backlog = int(listing.split()[2])  # Send-Q of a listening socket is its backlog
    assert backlog >= 128, listing


def test_idle_connections_do_not_cost_threads(exporter):
    idle = []
    try:
        for i in range(300):
            sock = socket.create_connection((LOOP, exporter.port), timeout=5)
            if i % 2:  # half of them kept alive after a request, half silent since connect
                sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            idle.append(sock)
        time.sleep(0.5)
        assert threads_of(exporter.process.pid) < 60
        assert requests.get(exporter.url + "/metrics", timeout=10).status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_requests_beyond_max_requests_get_a_quick_503(start_exporter, redis_db):
    slow = ReplayServer({"/health": Route({"status": "ok"}, delay=1.5)})
    try:
        exporter = start_exporter(base_config(redis_db.url, coordinators=[{"url": slow.url, "name": "slow", "timeout": "5s"}],
                                              ollama={"discover": False}), extra_args=("--web.max-requests", "2"))
        results = []

        def scrape():
            started = time.monotonic()
            status = requests.get(exporter.url + "/metrics", timeout=20).status_code
            results.append((status, time.monotonic() - started))

        threads = [threading.Thread(target=scrape) for _ in range(6)]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        for thread in threads:
            thread.join(30)
        statuses = sorted(status for status, _ in results)
        assert statuses.count(200) >= 2 and 503 in statuses, results
        assert all(seconds < 1.0 for status, seconds in results if status == 503), results
        assert requests.get(exporter.url + "/-/healthy", timeout=10).status_code == 200
    finally:
        slow.stop()


def test_a_slow_request_head_is_cut_off(exporter):
    started = time.monotonic()
    with socket.create_connection((LOOP, exporter.port), timeout=20) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert time.monotonic() - started < 15


def test_default_listen_address_serves_ipv4_and_ipv6(tmp_path, redis_db):
    """`:port` is a dual-stack socket; this test's traffic stays on loopback and the process lives for a second."""
    import sys

    import yaml

    port = free_port()
    config = tmp_path / "dual.yml"
    config.write_text(yaml.safe_dump(base_config(redis_db.url, ollama={"discover": False})))
    log = open(tmp_path / "dual.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "sollol_exporter", "--config.file", str(config), "--web.listen-address", f":{port}"],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _answers(socket.AF_INET, LOOP, port) or process.poll() is not None, 20, what="exporter start")
        assert _answers(socket.AF_INET, LOOP, port)
        assert _answers(socket.AF_INET6, "::1", port)
    finally:
        stop_process(process)
        log.close()


def _answers(family, host, port) -> bool:
    try:
        return exchange(port, b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", family=family, host=host).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def test_slow_clients_hold_no_worker(start_exporter, redis_db):
    """More half-sent request heads than --web.max-requests: they wait in the selector, scrapes still answer."""
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False}), extra_args=("--web.max-requests", "4"))
    slow = []
    try:
        for _ in range(20):
            sock = socket.create_connection((LOOP, exporter.port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(sock)
        time.sleep(0.3)
        for _ in range(5):
            started = time.monotonic()
            assert requests.get(exporter.url + "/metrics", timeout=10).status_code == 200
            assert time.monotonic() - started < 2
    finally:
        for sock in slow:
            sock.close()
