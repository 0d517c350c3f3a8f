"""Reading PUB/SUB replies straight from a socket: every split of the byte stream, oversized payloads, errors, EOF."""

from __future__ import annotations

import socket
import threading

import pytest

from sollol_exporter.events.push_reader import ConnectionClosed, ErrorReply, ProtocolError, PushReader

CHANNEL = b"sollol:dashboard:ollama:activity"


def bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def message(data: bytes, channel: bytes = CHANNEL, push: bytes = b"*") -> bytes:
    return push + b"3\r\n" + bulk(b"message") + bulk(channel) + bulk(data)


SUBSCRIBED = b"*3\r\n" + bulk(b"subscribe") + bulk(CHANNEL) + b":1\r\n"
PONG = b"*2\r\n" + bulk(b"pong") + bulk(b"")


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def read_all(reader: PushReader, count: int, limit: int = 1000) -> list[tuple]:
    replies = []
    while len(replies) < count:
        got = reader.read(2.0, limit)
        assert got, f"nothing more after {len(replies)} replies"
        replies.extend(got)
    return replies


def test_replies_split_at_every_byte_come_out_whole(pair):
    ours, theirs = pair
    stream = SUBSCRIBED + message(b'{"a": 1}') + PONG + message(b"", push=b">") + b"+PONG\r\n" + message(b"x\r\ny")
    reader = PushReader(ours, 1024)
    replies = []
    for byte in stream:
        theirs.sendall(bytes([byte]))
        replies.extend(reader.read(0.0, 100))
    assert replies == [(b"subscribe", CHANNEL, b"1"), (b"message", CHANNEL, b'{"a": 1}'), (b"pong", b""),
                       (b"message", CHANNEL, b""), (b"pong",), (b"message", CHANNEL, b"x\r\ny")]
    assert reader.pending == 0


def test_a_batch_is_at_most_the_limit_and_the_rest_waits_in_memory(pair):
    ours, theirs = pair
    theirs.sendall(b"".join(message(b"%d" % index) for index in range(1000)))
    reader = PushReader(ours, 1024)
    first = reader.read(1.0, 10)
    assert [reply[2] for reply in first] == [b"%d" % index for index in range(10)]
    rest = read_all(reader, 990)
    assert [reply[2] for reply in rest] == [b"%d" % index for index in range(10, 1000)]


def test_an_oversized_payload_is_discarded_as_it_arrives_and_the_next_message_reads(pair):
    ours, theirs = pair
    reader = PushReader(ours, 1024)
    stream = message(b"y" * 300_000) + message(b"after")
    sender = threading.Thread(target=lambda: [theirs.sendall(stream[i:i + 7000]) for i in range(0, len(stream), 7000)])
    sender.start()
    replies, most_pending = [], 0
    while len(replies) < 2:
        replies.extend(reader.read(2.0, 10))
        most_pending = max(most_pending, reader.pending)
    sender.join()
    assert replies == [(b"message", CHANNEL, None), (b"message", CHANNEL, b"after")]
    assert most_pending < 300_000
    assert reader.pending == 0


def test_what_arrived_before_redis_closed_the_connection_is_read_first(pair):
    ours, theirs = pair
    theirs.sendall(message(b"1") + message(b"2") + message(b"3")[:-4])
    theirs.close()
    reader = PushReader(ours, 1024)
    assert [reply[2] for reply in read_all(reader, 2)] == [b"1", b"2"]
    with pytest.raises(ConnectionClosed):
        reader.read(1.0, 10)


def test_an_error_reply_ends_the_reading_with_its_text(pair):
    ours, theirs = pair
    theirs.sendall(b"-NOPERM this user has no permissions to access one of the channels used as arguments\r\n")
    with pytest.raises(ErrorReply, match="NOPERM"):
        PushReader(ours, 1024).read(1.0, 10)


@pytest.mark.parametrize("garbage", [b"HTTP/1.1 400 Bad Request\r\n", b"*3\r\n$abc\r\n", b"*900\r\n", b"*3\r\n$7\r\nmessage\r\n$99999\r\n"])
def test_anything_else_is_a_protocol_error(pair, garbage):
    ours, theirs = pair
    theirs.sendall(garbage)
    with pytest.raises(ProtocolError):
        PushReader(ours, 1024).read(1.0, 10)


def test_a_reply_that_never_ends_is_a_protocol_error_not_a_growing_buffer(pair):
    ours, theirs = pair
    reader = PushReader(ours, 1024)
    theirs.sendall(b"*3\r\n" + bulk(b"message") + bulk(CHANNEL) + b"$" + b"1" * 4000)
    with pytest.raises(ProtocolError):
        reader.read(1.0, 10)


def test_past_max_pending_the_socket_is_left_unread(pair):
    ours, theirs = pair
    theirs.setblocking(False)
    sent = 0
    try:
        while sent < 2_000_000:
            sent += theirs.send(message(b"z" * 500) * 100)
    except BlockingIOError:
        pass
    reader = PushReader(ours, 1024, max_pending=20_000)
    assert len(reader.read(0.0, 1)) == 1
    assert reader.pending <= 20_000
    assert ours.recv(1, socket.MSG_PEEK)  # the rest is still in the socket, where Redis' limit sees it
