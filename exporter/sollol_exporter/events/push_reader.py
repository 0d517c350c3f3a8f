"""PUB/SUB messages read straight from a subscribed connection's socket, many at a time.

Redis closes a subscriber whose unread output passes `client-output-buffer-limit pubsub` (32 MB by default), and
redis-py's PubSub.get_message costs tens of microseconds a message, so a burst published faster than that was
dropped by Redis. Here every read first drains the socket into memory (at most `max_pending` bytes) and parses
afterwards: Redis' buffer stays empty while the exporter catches up on its own.

Replies are RESP2 arrays, or RESP3 pushes (`>`) when the URL asks for protocol 3: ("message", channel, data),
("subscribe", channel, count), the ("pong", "") that PING gets while subscribed; a simple string ("+PONG") becomes
a one-item tuple. A data payload over `max_message_bytes` is discarded as it arrives and comes back as None.
"""

from __future__ import annotations

import select
import ssl
import time
from collections import deque

MAX_PENDING = 64 * 1_048_576  # past Redis' own 32 MB: a burst waits here, not in Redis
READ_SIZE = 1_048_576
_MESSAGE_PREFIXES = (b"*3\r\n$7\r\nmessage\r\n", b">3\r\n$7\r\nmessage\r\n")
_PREFIX_LENGTH = len(_MESSAGE_PREFIXES[0])
_NO_DATA = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class ConnectionClosed(ConnectionError):
    """Redis closed the connection (a restart, CLIENT KILL, or a subscriber past its output buffer limit)."""


class ProtocolError(ConnectionError):
    """Something that is not what Redis sends a subscriber."""


class ErrorReply(ConnectionError):
    """Redis answered with an error (`-NOPERM ...`, `-NOAUTH ...`)."""


class _Incomplete(Exception):
    pass


class PushReader:
    def __init__(self, sock, max_message_bytes: int, max_pending: int = MAX_PENDING):
        sock.setblocking(False)
        self.sock = sock
        self.max_message_bytes = max_message_bytes
        self.max_pending = max_pending
        self._poll = select.poll()  # not select(): the exporter may hold more than 1024 file descriptors
        self._poll.register(sock, select.POLLIN)
        self._chunks: deque[bytes] = deque()  # received, not yet parsed
        self.pending = 0  # bytes received and not yet parsed
        self._buffer = b""  # the chunk being parsed, from _position on
        self._position = 0
        self._skip = 0  # bytes of a discarded payload still to come
        self._closed = False
        self.last_arrival = time.monotonic()

    def read(self, wait: float, limit: int) -> list[tuple]:
        """Up to `limit` replies; waits up to `wait` seconds when nothing is buffered. Raises ConnectionClosed once
        Redis has closed the connection and everything it sent before has been returned."""
        self._drain()
        replies = self._parse(limit)
        if not replies and not self._closed and self._wait(wait):
            self._drain()
            replies = self._parse(limit)
        if not replies and self._closed:
            raise ConnectionClosed("Redis closed the connection")
        return replies

    def _wait(self, timeout: float) -> bool:
        if getattr(self.sock, "pending", None) and self.sock.pending():  # TLS: decrypted bytes the kernel no longer shows
            return True
        return bool(self._poll.poll(max(0, int(timeout * 1000))))

    def _drain(self) -> None:
        """Everything the socket holds, up to max_pending, without blocking."""
        while not self._closed and self.pending < self.max_pending:
            try:
                chunk = self.sock.recv(min(READ_SIZE, self.max_pending - self.pending))
            except _NO_DATA:
                return
            if not chunk:
                self._closed = True
                return
            self.last_arrival = time.monotonic()
            if self._skip and not self._chunks:  # the rest of a discarded payload
                dropped = min(self._skip, len(chunk))
                self._skip -= dropped
                chunk = chunk[dropped:]
                if not chunk:
                    continue
            self._chunks.append(chunk)
            self.pending += len(chunk)

    def _parse(self, limit: int) -> list[tuple]:
        replies: list[tuple] = []
        while len(replies) < limit:
            try:
                reply, end = self._reply(self._buffer, self._position)
            except _Incomplete:
                if not self._more():
                    break
                continue
            self.pending -= end - self._position
            self._position = end
            replies.append(reply)
        return replies

    def _more(self) -> bool:
        """Join the unparsed tail of the current chunk with the next one; False if none has arrived."""
        while self._skip and self._chunks:  # a discarded payload that ran past the current chunk
            chunk = self._chunks.popleft()
            dropped = min(self._skip, len(chunk))
            self._skip -= dropped
            self.pending -= dropped
            if dropped < len(chunk):
                self._chunks.appendleft(chunk[dropped:])
        if len(self._buffer) - self._position > self.max_message_bytes + 1024:
            raise ProtocolError("an incomplete reply longer than any event")
        if self._skip or not self._chunks:
            return False
        self._buffer = self._buffer[self._position:] + self._chunks.popleft()
        self._position = 0
        return True

    def _reply(self, buffer: bytes, position: int) -> tuple[tuple, int]:
        if buffer.startswith(_MESSAGE_PREFIXES[0], position) or buffer.startswith(_MESSAGE_PREFIXES[1], position):
            channel, position = self._bulk(buffer, position + _PREFIX_LENGTH, last=False)
            data, position = self._bulk(buffer, position, last=True)
            return (b"message", channel, data), position
        end = buffer.find(b"\r\n", position)
        if end < 0:
            raise _Incomplete
        kind, line = buffer[position:position + 1], buffer[position + 1:end]
        if kind == b"-":
            raise ErrorReply(line[:200].decode("utf-8", "replace"))
        if kind == b"+":
            return (line.lower(),), end + 2
        if kind not in (b"*", b">"):
            raise ProtocolError(f"unexpected reply type {kind!r}")
        count, position = _integer(line), end + 2
        if not 0 < count <= 8:
            raise ProtocolError(f"reply of {count} items")
        items = []
        for index in range(count):
            item, position = self._item(buffer, position, last=index == count - 1)
            items.append(item)
        return tuple(items), position

    def _item(self, buffer: bytes, position: int, last: bool):
        if buffer.startswith(b"$", position):
            return self._bulk(buffer, position, last)
        end = buffer.find(b"\r\n", position)
        if end < 0:
            raise _Incomplete
        kind = buffer[position:position + 1]
        if kind not in (b":", b"+"):
            raise ProtocolError(f"unexpected item type {kind!r}")
        return buffer[position + 1:end], end + 2

    def _bulk(self, buffer: bytes, position: int, last: bool) -> tuple[bytes | None, int]:
        end = buffer.find(b"\r\n", position)
        if end < 0:
            raise _Incomplete
        if buffer[position:position + 1] != b"$":
            raise ProtocolError("expected a bulk string")
        size, start = _integer(buffer[position + 1:end]), end + 2
        if size < 0:
            return None, start
        if size > self.max_message_bytes:
            if not last:
                raise ProtocolError(f"bulk string of {size} bytes")
            available = len(buffer) - start
            if available >= size + 2:
                return None, start + size + 2
            # Discard the rest as it arrives: its bytes are never kept.
            self._skip = size + 2 - available
            return None, len(buffer)
        if len(buffer) < start + size + 2:
            raise _Incomplete
        return buffer[start:start + size], start + size + 2


def _integer(text: bytes) -> int:
    try:
        return int(text)
    except ValueError:
        raise ProtocolError(f"bad length {text[:20]!r}") from None
