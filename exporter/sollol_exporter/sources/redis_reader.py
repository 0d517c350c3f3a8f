"""One read of SOLLOL's Redis per scrape: the metadata key, GPU and worker-registration keys, new routing events.

Read-only, SCAN (never KEYS), sizes checked before values are fetched. Each command is bounded by the socket
timeout and the read as a whole by a deadline, checked between commands. Values are kept as bytes here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

METADATA_KEY = "sollol:router:metadata"
GPU_PREFIX = "sollol:gpu:"
GPU_STREAM = "sollol:gpu:stats"
RPC_NODE_PREFIX = "sollol:rpc:node:"
ROUTING_STREAM = "sollol:routing_stream"
_STREAM_BATCH = 100
_STREAM_MAX_PER_SCRAPE = 50_000
MAX_KEYS = 10_000  # per prefix; the rest are counted in Snapshot.dropped, not fetched
_VALUE_BATCH = 100
# Bytes one read may pull from Redis; what is left is read at the next scrape (stream) or counted as dropped (keys).
MAX_READ_BYTES = 64 * 1_048_576


@dataclass
class Value:
    """A string key's value, or why it could not be read."""

    raw: bytes | None = None
    error: str = ""
    dropped: bool = False  # left out by a cap, not malformed


@dataclass
class Snapshot:
    up: bool = False
    error: str = ""
    answered: bool = False  # a Redis server replied, if only with an error (wrong password, still loading)
    metadata: Value | None = None
    metadata_ttl: int | None = None
    gpu: dict[str, Value] = field(default_factory=dict)
    rpc_nodes: dict[str, Value] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # "gpu" / "rpc_nodes": keys past MAX_KEYS
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

    def read(self, deadline: float = float("inf"), routing_cursor: bytes | None = None) -> Snapshot:
        """Everything the exporter reads from Redis; the routing stream from `routing_cursor` (None: from now on)."""
        self.deadline = deadline
        self.budget = MAX_READ_BYTES
        snapshot = Snapshot(routing_cursor=routing_cursor)
        try:
            self.client.ping()
            snapshot.up = snapshot.answered = True
            snapshot.metadata, snapshot.metadata_ttl = self._metadata()
            if self.read_gpu:
                snapshot.gpu, snapshot.dropped["gpu"] = self._prefixed(GPU_PREFIX, skip={GPU_STREAM})
            snapshot.rpc_nodes, snapshot.dropped["rpc_nodes"] = self._prefixed(RPC_NODE_PREFIX)
        except (redis.RedisError, OSError) as err:
            snapshot.up = False
            snapshot.answered = isinstance(err, _SERVER_REPLIES)
            snapshot.error = _describe(err)
            return snapshot
        if self.read_routing:
            try:
                self._routing(snapshot)
            except (redis.RedisError, OSError) as err:
                snapshot.routing_error = _describe(err)
        return snapshot

    def _metadata(self) -> tuple[Value | None, int | None]:
        self._check()
        pipe = self.client.pipeline(transaction=False)
        pipe.type(METADATA_KEY)
        pipe.ttl(METADATA_KEY)
        kind, ttl = pipe.execute()
        if kind == b"none":
            return None, -2
        values = self._values([METADATA_KEY], {METADATA_KEY: kind})
        return values[METADATA_KEY], ttl

    def _prefixed(self, prefix: str, skip: set[str] = frozenset()) -> tuple[dict[str, Value], int]:
        """Values of the keys under `prefix` (at most MAX_KEYS of them) and how many more there were."""
        keys, dropped = [], 0
        cursor = 0
        while True:
            self._check()
            cursor, batch = self.client.scan(cursor, match=_escape(prefix) + "*", count=self.scan_count)
            for key in batch:
                name = key.decode("utf-8", "replace")
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
        self._check()
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        kinds = dict(zip(keys, pipe.execute()))
        values = self._values(keys, kinds)
        return {key[len(prefix):]: value for key, value in values.items()}, dropped

    def _values(self, keys: list[str], kinds: dict[str, bytes]) -> dict[str, Value]:
        """GET every string key that is not too large; explain the others."""
        result: dict[str, Value] = {}
        strings = [k for k in keys if kinds[k] == b"string"]
        for key in keys:
            if kinds[key] not in (b"string", b"none"):
                result[key] = Value(error=f"WRONGTYPE: holds a {kinds[key].decode()}, not a string")
        if strings:
            self._check()
            pipe = self.client.pipeline(transaction=False)
            for key in strings:
                pipe.strlen(key)
            lengths = pipe.execute()
            sizes = {}
            for key, length in zip(strings, lengths):
                if length > self.max_value_bytes:
                    result[key] = Value(error=f"value of {length} bytes exceeds max_value_bytes")
                else:
                    sizes[key] = length
            small = list(sizes)
            for start in range(0, len(small), _VALUE_BATCH):
                batch = small[start:start + _VALUE_BATCH]
                if sum(sizes[key] for key in batch) > self.budget:
                    for key in batch:
                        result[key] = Value(error="left out: the read's byte budget is spent", dropped=True)
                    continue
                self._check()
                for key, raw in zip(batch, self.client.mget(batch)):
                    if raw is not None:
                        self.budget -= len(raw)
                        result[key] = Value(raw=raw)
        return result

    def _routing(self, snapshot: Snapshot) -> None:
        """New entries of the routing stream since the cursor; without a cursor, only mark the position."""
        self._check()
        kind = self.client.type(ROUTING_STREAM)
        if kind == b"none":
            if snapshot.routing_cursor is None:
                snapshot.routing_cursor = b"0-0"
            return
        if kind != b"stream":
            raise redis.ResponseError(f"WRONGTYPE: {ROUTING_STREAM} holds a {kind.decode()}, not a stream")
        newest = self.client.xrevrange(ROUTING_STREAM, count=1)
        snapshot.routing_stream_length = self.client.xlen(ROUTING_STREAM)
        newest_id = newest[0][0] if newest else b"0-0"
        if snapshot.routing_cursor is None:
            snapshot.routing_cursor = newest_id
            return
        if stream_id(newest_id) < stream_id(snapshot.routing_cursor):
            snapshot.routing_cursor = b"0-0"  # the stream was deleted and written anew
            snapshot.routing_reset = True
        while len(snapshot.routing_events) < _STREAM_MAX_PER_SCRAPE and self.budget > 0:
            self._check()
            batch = self.client.xrange(ROUTING_STREAM, min=b"(" + snapshot.routing_cursor, count=_STREAM_BATCH)
            for entry_id, fields in batch:
                event = fields.get(b"event")
                self.budget -= sum(len(k) + len(v) for k, v in fields.items())
                snapshot.routing_events.append((entry_id, event))
                snapshot.routing_cursor = entry_id
            if len(batch) < _STREAM_BATCH:
                break


def stream_id(entry_id: bytes) -> tuple[int, int]:
    """A stream entry id as a comparable pair."""
    millis, _, sequence = entry_id.partition(b"-")
    return int(millis), int(sequence or 0)


def _escape(prefix: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix)


def _describe(err: Exception) -> str:
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    return f"{type(err).__name__}: {message}"[:200]
