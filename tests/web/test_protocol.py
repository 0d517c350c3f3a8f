"""The request reader (h11 underneath, with this server's own limits around it), Accept-Encoding negotiation and
the canned answers, without sockets."""

from __future__ import annotations

import pytest

from sollol_exporter.web import protocol
from sollol_exporter.web.protocol import BadRequest, RequestReader

GET = b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"


def read(data: bytes, step: int | None = None) -> RequestReader:
    reader = RequestReader()
    step = step or len(data) or 1
    for start in range(0, len(data), step):
        reader.feed(data[start:start + step])
    return reader


def refusal(data: bytes, step: int | None = None) -> tuple[int, str]:
    with pytest.raises(BadRequest) as raised:
        read(data, step)
    return raised.value.status, raised.value.message


def test_a_head_is_parsed_whole_or_not_at_all():
    reader = RequestReader()
    assert reader.feed(GET[:20]) is None and reader.started and reader.request is None
    request = reader.feed(GET[20:])
    assert (request.method, request.target, request.path, request.version) == ("GET", "/metrics?x=1", "/metrics", (1, 1))
    assert request.header("accept-encoding") == "gzip" and request.header("Host") == "x"
    assert request.keep_alive and not request.chunked and request.content_length == 0
    assert read(GET, step=1).request == request  # a byte at a time, as a slow client sends it


def test_repeated_fields_are_joined_and_absolute_targets_give_their_path():
    request = read(b"GET http://example.org/metrics HTTP/1.1\r\nHost: x\r\nAccept: a\r\nAccept: b\r\n\r\n").request
    assert request.path == "/metrics" and request.header("accept") == "a, b"


def test_keep_alive_follows_the_version_and_connection():
    def keep(head: bytes) -> bool:
        return read(head).request.keep_alive

    assert keep(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not keep(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert not keep(b"GET / HTTP/1.0\r\n\r\n")
    assert keep(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")  # h11 alone would close it


def test_empty_lines_before_a_request_are_dropped_and_counted():
    reader = read(b"\r\n\n\r\n" + GET, step=3)
    assert reader.request.path == "/metrics" and reader.blank == 5
    only_blank = read(b"\r\n" * 10)
    assert only_blank.blank == 20 and not only_blank.started and only_blank.request is None


def test_a_body_is_read_to_its_end_and_what_follows_is_left_for_the_next_request():
    data = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel"
    reader = read(data)
    assert reader.request.content_length == 5 and reader.body_pending()
    reader.feed(b"lo\r\n" + GET)  # the empty line after a body, as old clients send it, then a pipelined request
    assert not reader.body_pending()
    following = RequestReader()
    assert following.feed(reader.leftover()).path == "/metrics" and following.blank == 2


def test_expect_100_continue_is_seen_until_the_body_starts():
    reader = read(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert reader.body_pending() and reader.expects_continue
    reader.feed(b"o")
    assert reader.body_pending() and not reader.expects_continue
    assert not read(b"POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n").expects_continue


def test_a_chunked_body_is_flagged():
    request = read(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").request
    assert request.chunked


def test_a_head_longer_than_the_limit_is_431_even_when_it_arrives_whole():
    big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * protocol.MAX_HEAD_BYTES + b"\r\n\r\n"
    assert refusal(big)[0] == 431  # h11 by itself would parse it: it limits only what is still incomplete
    assert refusal(big[:-4], step=4096)[0] == 431  # and never waits for the end of one
    exact = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "
    exact += b"a" * (protocol.MAX_HEAD_BYTES - len(exact) - 4) + b"\r\n\r\n"
    assert len(exact) == protocol.MAX_HEAD_BYTES and read(exact).request is not None


def test_too_many_fields_is_431():
    many = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * protocol.MAX_HEADERS + b"\r\n"
    assert refusal(many)[0] == 431


def test_a_request_line_without_a_version_is_refused_as_soon_as_it_ends():
    # HTTP/0.9: its client waits for an answer without ever sending an empty line
    assert refusal(b"GET /metrics\r\n")[0] == 400
    assert refusal(b"GET /metrics\n", step=1)[0] == 400
    reader = read(b"GET /metrics HTTP/1.1\r\n", step=5)  # a proper one waits for its head
    assert reader.request is None


def test_bytes_that_can_never_start_a_request_are_refused_at_once():
    assert refusal(b"\x16\x03\x01\x02\x00")[0] == 400  # a TLS ClientHello
    assert refusal(b"\xff\xfe\xfd\r\n")[0] == 400


@pytest.mark.parametrize("data, status", [
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n folded: header\r\nHost: x\r\n\r\n", 400),
    (b"GET  /  HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET example.org HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n", 505),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
])
def test_malformed_requests_are_refused_with_their_status(data, status):
    assert refusal(data)[0] == status


def test_a_field_folded_onto_the_line_before_is_joined_with_a_space():
    """RFC 9112 5.2 lets a server either refuse obs-fold or replace it with a space; h11 replaces, as Go does."""
    request = read(b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: one\r\n  two\r\n\r\n").request
    assert request.header("x-long") == "one two"


def test_a_refusal_never_quotes_what_the_client_sent():
    status, message = refusal(b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization : Basic c2VjcmV0\r\n\r\n")
    assert status == 400 and "c2VjcmV0" not in message and "Basic" not in message and message


@pytest.mark.parametrize("header, gzipped", [
    (None, False), ("gzip", True), ("gzip;q=0", False), ("identity;q=0, gzip", True), ("*", True),
    ("gzip;q=bogus", False), ("identity;q=0", None), ("*;q=0", None),
])
def test_accept_encoding(header, gzipped):
    assert protocol.negotiate_gzip(header) is gzipped


def test_a_canned_answer_is_complete_and_closes():
    answer = protocol.canned(503, "busy", [("Retry-After", "1")])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and body == b"busy\n"
    assert b"\r\nContent-Length: 5\r\n" in head and b"\r\nConnection: close\r\n" in head and b"\r\nRetry-After: 1" in head
