"""One read of SOLLOL's Redis per scrape: the metadata key, GPU and worker-registration keys, new routing events.

Read-only, SCAN (never KEYS), sizes checked before values are fetched. Each command is bounded by the socket
timeout and the read as a whole by a deadline, checked between commands. Values are kept as bytes here.

Every value has a byte cost limit: a GPU report or a registration larger than MAX_NODE_VALUE_BYTES (SOLLOL writes
well under 1 KiB) is not fetched and is reported as invalid; each prefix and the routing stream have a byte budget
per read, past which keys are left out and counted as dropped; values are fetched with GETRANGE, so
that a value that grows after its size was checked still costs at most its limit, in pipelines of about
MAX_BATCH_BYTES. Once Redis has answered PING and the metadata key, a prefix that runs out of time reports the keys
it did not read as dropped (not read in time) instead of failing the whole read: Redis stays up.
"""

from __future__ import annotations

import time
from collections.abc import Container
from dataclasses import dataclass, field
from typing import cast

import redis

from sollol_exporter.peers import GPU_PREFIX, GPU_STREAM, METADATA_KEY, ROUTING_STREAM, RPC_NODE_PREFIX

_STREAM_BATCH = 100
_STREAM_MAX_PER_SCRAPE = 50_000
MAX_KEYS = 10_000  # per prefix; the rest are counted in RedisRead.dropped, not fetched
_VALUE_BATCH = 100
MAX_NODE_VALUE_BYTES = 65_536  # a GPU report or a registration; never more than redis.max_value_bytes
# Bytes one read may pull per prefix (10,000 SOLLOL-sized values fit) and from the stream (what is left is read at
# the next scrape); keys past the budget are counted as dropped.
MAX_PREFIX_BYTES = 4 * 1_048_576
MAX_STREAM_BYTES = 4 * 1_048_576
MAX_BATCH_BYTES = 262_144  # one pipeline of GETRANGEs: well within the socket timeout on any link
NOT_READ_IN_TIME = "not read within the scrape budget"
# The client is made without decode_responses, so Redis replies arrive as bytes; redis-py's hints say bytes | str.
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass
class Value:
    """A string key's value, or why it could not be read."""

    raw: bytes | None = None
    error: str = ""
    dropped: bool = False  # left out by a budget or by time, not malformed
    late: bool = False  # left out because the read ran out of time: its collector did not read everything


@dataclass
class RedisRead:
    """What one read of Redis returned."""

    up: bool = False
    error: str = ""
    answered: bool = False  # a Redis server replied, if only with an error (wrong password, still loading)
    metadata: Value | None = None
    metadata_ttl: int | None = None
    gpu: dict[str, Value] = field(default_factory=dict)
    rpc_nodes: dict[str, Value] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # "gpu" / "rpc_nodes": keys past MAX_KEYS
    section_errors: dict[str, str] = field(default_factory=dict)  # "gpu" / "rpc_nodes": why a prefix was not listed
    routing_events: list[tuple[bytes, bytes | None]] = field(default_factory=list)  # (entry id, event JSON)
    routing_stream_length: int | None = None
    routing_cursor: bytes | None = None
    routing_reset: bool = False  # the stream was deleted and written anew: its ids started again
    routing_error: str = ""


class _PastDeadline(redis.TimeoutError):
    pass


# Errors that are a Redis server's own reply: it is there, only not usable as configured.
_SERVER_REPLIES = (redis.ResponseError, redis.AuthenticationError, redis.BusyLoadingError)


class RedisReader:
    def __init__(self, url: str, timeout: float, max_value_bytes: int, scan_count: int, routing_stream: bool, read_gpu: bool = True):
        self.url = url
        self.max_value_bytes = max_value_bytes
        self.scan_count = scan_count
        self.read_routing = routing_stream
        self.read_gpu = read_gpu
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=False, retry_on_timeout=False
        )
        self.deadline = float("inf")

    def close(self) -> None:
        self.client.close()

    def _check(self) -> None:
        if time.monotonic() > self.deadline:
            raise _PastDeadline("no answer within the scrape budget")

    def read(self, deadline: float = float("inf"), routing_cursor: bytes | None = None) -> RedisRead:
        """Everything the exporter reads from Redis; the routing stream from `routing_cursor` (None: from now on)."""
        self.deadline = deadline
        result = RedisRead(routing_cursor=routing_cursor)
        try:
            self.client.ping()
            result.up = result.answered = True
            result.metadata, result.metadata_ttl = self._metadata()
        except (redis.RedisError, OSError) as err:
            result.up = False
            result.answered = isinstance(err, _SERVER_REPLIES)
            result.error = _describe(err)
            return result
        prefixes = [("gpu", GPU_PREFIX, {GPU_STREAM})] if self.read_gpu else []
        prefixes.append(("rpc_nodes", RPC_NODE_PREFIX, set()))
        for name, prefix, skip in prefixes:
            try:
                values, result.dropped[name] = self._prefixed(prefix, skip)
            except (redis.TimeoutError, OSError) as err:  # slow, not gone: what was read is kept
                values, result.dropped[name] = {}, 0
                result.section_errors[name] = _describe(err)
            except redis.RedisError as err:
                result.up = False
                result.answered = isinstance(err, _SERVER_REPLIES)
                result.error = _describe(err)
                return result
            setattr(result, name, values)
        if self.read_routing:
            try:
                self._routing(result)
            except (redis.RedisError, OSError) as err:
                result.routing_error = _describe(err)
        return result

    def _metadata(self) -> tuple[Value | None, int | None]:
        self._check()
        pipe = self.client.pipeline(transaction=False)
        pipe.type(METADATA_KEY)
        pipe.ttl(METADATA_KEY)
        kind, ttl = pipe.execute()
        if kind == b"none":
            return None, -2
        values = self._values([METADATA_KEY], {METADATA_KEY: kind}, self.max_value_bytes, self.max_value_bytes)
        return values[METADATA_KEY], ttl

    def _prefixed(self, prefix: str, skip: Container[str] = frozenset()) -> tuple[dict[str, Value], int]:
        """Values of the keys under `prefix` (at most MAX_KEYS of them) and how many more there were."""
        keys: list[str] = []
        dropped = 0
        cursor = 0
        while True:
            self._check()
            cursor, batch = self.client.scan(cursor, match=_escape(prefix) + "*", count=self.scan_count)
            for raw_key in cast(list[bytes], batch):
                name = raw_key.decode("utf-8", "replace")
                if name in skip:
                    continue
                if len(keys) < MAX_KEYS:
                    keys.append(name)
                else:
                    dropped += 1
            if cursor == 0:
                break
        keys = list(dict.fromkeys(keys))  # SCAN may return a key twice
        if not keys:
            return {}, dropped
        result: dict[str, Value] = {}
        try:
            self._check()
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.type(key)
            kinds = dict(zip(keys, pipe.execute(), strict=True))
            self._values(keys, kinds, min(self.max_value_bytes, MAX_NODE_VALUE_BYTES), MAX_PREFIX_BYTES, result)
        except (redis.TimeoutError, OSError) as err:
            for key in keys:
                if key not in result:
                    result[key] = Value(error=f"{NOT_READ_IN_TIME} ({_describe(err)})", dropped=True, late=True)
        return {key[len(prefix):]: value for key, value in result.items()}, dropped

    def _values(self, keys: list[str], kinds: dict[str, bytes], max_bytes: int, budget: int,
                result: dict[str, Value] | None = None) -> dict[str, Value]:
        """GET every string key of at most `max_bytes` while `budget` bytes last; explain the others. Fills
        `result` as it goes, so that a caller whose read runs out of time keeps what was read."""
        result = {} if result is None else result
        strings = [k for k in keys if kinds[k] == b"string"]
        for key in keys:
            if kinds[key] not in (b"string", b"none"):
                result[key] = Value(error=f"WRONGTYPE: holds a {kinds[key].decode()}, not a string")
        if not strings:
            return result
        self._check()
        pipe = self.client.pipeline(transaction=False)
        for key in strings:
            pipe.strlen(key)
        sizes = {}
        # A key may change type between TYPE and here: its error costs that key only.
        for key, length in zip(strings, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(length, redis.ResponseError):
                result[key] = Value(error=_describe(length))
            elif length > max_bytes:
                result[key] = Value(error=f"value of {length} bytes exceeds the {max_bytes} bytes read for such a key")
            elif length > budget:
                result[key] = Value(error="left out: the read's byte budget is spent", dropped=True)
            else:
                sizes[key] = length
                budget -= length
        for batch in _batches(list(sizes), sizes):
            self._check()
            pipe = self.client.pipeline(transaction=False)
            for key in batch:
                pipe.getrange(key, 0, max_bytes)  # one byte more than allowed: a value that grew since STRLEN shows
            for key, raw in zip(batch, pipe.execute(raise_on_error=False), strict=True):
                if isinstance(raw, redis.ResponseError):
                    result[key] = Value(error=_describe(raw))
                elif len(raw) > max_bytes:
                    result[key] = Value(error=f"value of more than {max_bytes} bytes exceeds the {max_bytes} bytes read for such a key")
                elif raw or sizes[key] == 0:  # empty and said to be longer: deleted since STRLEN, nothing to report
                    result[key] = Value(raw=raw)
        return result

    def _routing(self, result: RedisRead) -> None:
        """New entries of the routing stream since the cursor; without a cursor, only mark the position."""
        self._check()
        kind = cast(bytes, self.client.type(ROUTING_STREAM))
        if kind == b"none":
            if result.routing_cursor is None:
                result.routing_cursor = b"0-0"
            return
        if kind != b"stream":
            raise redis.ResponseError(f"WRONGTYPE: {ROUTING_STREAM} holds a {kind.decode()}, not a stream")
        newest = cast(StreamEntries, self.client.xrevrange(ROUTING_STREAM, count=1))
        result.routing_stream_length = self.client.xlen(ROUTING_STREAM)
        newest_id = newest[0][0] if newest else b"0-0"
        if result.routing_cursor is None:
            result.routing_cursor = newest_id
            return
        if stream_id(newest_id) < stream_id(result.routing_cursor):
            result.routing_cursor = b"0-0"  # the stream was deleted and written anew
            result.routing_reset = True
        budget = MAX_STREAM_BYTES
        while len(result.routing_events) < _STREAM_MAX_PER_SCRAPE and budget > 0:
            self._check()
            batch = cast(StreamEntries, self.client.xrange(ROUTING_STREAM, min=b"(" + result.routing_cursor, count=_STREAM_BATCH))
            for entry_id, fields in batch:
                event = fields.get(b"event")
                budget -= sum(len(k) + len(v) for k, v in fields.items())
                result.routing_events.append((entry_id, event))
                result.routing_cursor = entry_id
            if len(batch) < _STREAM_BATCH:
                break


def _batches(keys: list[str], sizes: dict[str, int]):
    """`keys` in order, in groups of at most _VALUE_BATCH keys and MAX_BATCH_BYTES bytes (a larger key alone)."""
    batch: list[str] = []
    size = 0
    for key in keys:
        if batch and (len(batch) == _VALUE_BATCH or size + sizes[key] > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(key)
        size += sizes[key]
    if batch:
        yield batch


def stream_id(entry_id: bytes) -> tuple[int, int]:
    """A stream entry id as a comparable pair."""
    millis, _, sequence = entry_id.partition(b"-")
    return int(millis), int(sequence or 0)


def _escape(prefix: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix)


def _describe(err: Exception) -> str:
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    return f"{type(err).__name__}: {message}"[:200]
