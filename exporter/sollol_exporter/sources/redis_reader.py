"""One read of SOLLOL's Redis per scrape: the metadata key, GPU and worker-registration keys, new routing events.

Read-only, SCAN (never KEYS), sizes checked before values are fetched. Values are kept as bytes here; parsing
and its errors belong to the collectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

METADATA_KEY = "sollol:router:metadata"
GPU_PREFIX = "sollol:gpu:"
GPU_STREAM = "sollol:gpu:stats"
RPC_NODE_PREFIX = "sollol:rpc:node:"
ROUTING_STREAM = "sollol:routing_stream"
_STREAM_BATCH = 1000
_STREAM_MAX_PER_SCRAPE = 50_000


@dataclass
class Value:
    """A string key's value, or why it could not be read."""

    raw: bytes | None = None
    error: str = ""


@dataclass
class Snapshot:
    up: bool = False
    error: str = ""
    metadata: Value | None = None
    metadata_ttl: int | None = None
    gpu: dict[str, Value] = field(default_factory=dict)
    rpc_nodes: dict[str, Value] = field(default_factory=dict)
    routing_events: list[bytes | None] = field(default_factory=list)
    routing_stream_length: int | None = None
    routing_error: str = ""


class RedisReader:
    def __init__(self, url: str, timeout: float, max_value_bytes: int, scan_count: int, routing_stream: bool):
        self.url = url
        self.max_value_bytes = max_value_bytes
        self.scan_count = scan_count
        self.read_routing = routing_stream
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=False, retry_on_timeout=False
        )
        self.routing_last_id: bytes | None = None

    def close(self) -> None:
        self.client.close()

    def read(self) -> Snapshot:
        snapshot = Snapshot()
        try:
            self.client.ping()
            snapshot.up = True
            snapshot.metadata, snapshot.metadata_ttl = self._metadata()
            snapshot.gpu = self._prefixed(GPU_PREFIX, skip={GPU_STREAM})
            snapshot.rpc_nodes = self._prefixed(RPC_NODE_PREFIX)
        except (redis.RedisError, OSError) as err:
            snapshot.up = False
            snapshot.error = _describe(err)
            return snapshot
        if self.read_routing:
            try:
                snapshot.routing_events, snapshot.routing_stream_length = self._routing()
            except (redis.RedisError, OSError) as err:
                snapshot.routing_error = _describe(err)
        return snapshot

    def _metadata(self) -> tuple[Value | None, int | None]:
        pipe = self.client.pipeline(transaction=False)
        pipe.type(METADATA_KEY)
        pipe.ttl(METADATA_KEY)
        kind, ttl = pipe.execute()
        if kind == b"none":
            return None, -2
        values = self._values([METADATA_KEY], {METADATA_KEY: kind})
        return values[METADATA_KEY], ttl

    def _prefixed(self, prefix: str, skip: set[str] = frozenset()) -> dict[str, Value]:
        keys = []
        for key in self.client.scan_iter(match=_escape(prefix) + "*", count=self.scan_count):
            name = key.decode("utf-8", "replace")
            if name not in skip:
                keys.append(name)
            if len(keys) >= 10_000:
                break
        if not keys:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        kinds = dict(zip(keys, pipe.execute()))
        values = self._values(keys, kinds)
        return {key[len(prefix):]: value for key, value in values.items()}

    def _values(self, keys: list[str], kinds: dict[str, bytes]) -> dict[str, Value]:
        """GET every string key that is not too large; explain the others."""
        result: dict[str, Value] = {}
        strings = [k for k in keys if kinds[k] == b"string"]
        for key in keys:
            if kinds[key] not in (b"string", b"none"):
                result[key] = Value(error=f"WRONGTYPE: holds a {kinds[key].decode()}, not a string")
        if strings:
            pipe = self.client.pipeline(transaction=False)
            for key in strings:
                pipe.strlen(key)
            lengths = pipe.execute()
            small = []
            for key, length in zip(strings, lengths):
                if length > self.max_value_bytes:
                    result[key] = Value(error=f"value of {length} bytes exceeds max_value_bytes")
                else:
                    small.append(key)
            if small:
                for key, raw in zip(small, self.client.mget(small)):
                    if raw is not None:
                        result[key] = Value(raw=raw)
        return result

    def _routing(self) -> tuple[list[bytes | None], int | None]:
        """New entries of the routing stream since the last scrape; the first scrape only marks the position."""
        kind = self.client.type(ROUTING_STREAM)
        if kind == b"none":
            if self.routing_last_id is None:
                self.routing_last_id = b"0-0"
            return [], None
        if kind != b"stream":
            raise redis.ResponseError(f"WRONGTYPE: {ROUTING_STREAM} holds a {kind.decode()}, not a stream")
        newest = self.client.xrevrange(ROUTING_STREAM, count=1)
        length = self.client.xlen(ROUTING_STREAM)
        newest_id = newest[0][0] if newest else b"0-0"
        if self.routing_last_id is None:
            self.routing_last_id = newest_id
            return [], length
        if _stream_id(newest_id) < _stream_id(self.routing_last_id):
            self.routing_last_id = b"0-0"  # the stream was deleted and written anew
        events: list[bytes | None] = []
        while len(events) < _STREAM_MAX_PER_SCRAPE:
            batch = self.client.xrange(ROUTING_STREAM, min=b"(" + self.routing_last_id, count=_STREAM_BATCH)
            for entry_id, fields in batch:
                events.append(fields.get(b"event"))
                self.routing_last_id = entry_id
            if len(batch) < _STREAM_BATCH:
                break
        return events, length


def _stream_id(entry_id: bytes) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition(b"-")
    return int(millis), int(sequence or 0)


def _escape(prefix: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix)


def _describe(err: Exception) -> str:
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    return f"{type(err).__name__}: {message}"[:200]
