"""The Redis reader against a real redis-server: what each value may cost, and what a slow read still reports."""

import json
import time

from sollol_exporter.sources.redis_reader import MAX_NODE_VALUE_BYTES, MAX_PREFIX_BYTES, RedisReader
from tests.fixtures.sollol import GPU, RPC_NODE


def reader(redis_db, max_value_bytes=1_048_576, scan_count=500, routing=False):
    return RedisReader(redis_db.url, 1.0, max_value_bytes, scan_count, routing)


def read_once(redis_db, **settings):
    """One read with a reader of these settings, closed afterwards."""
    r = reader(redis_db, **settings)
    try:
        return r.read(time.monotonic() + 5)
    finally:
        r.close()


def test_a_node_key_over_its_limit_is_not_fetched_and_reported(redis_db):
    redis_db.client.set("sollol:gpu:10.0.0.5:11434", json.dumps(GPU))
    redis_db.client.set("sollol:gpu:10.0.0.6:11434", b"x" * (MAX_NODE_VALUE_BYTES + 1))
    redis_db.client.set("sollol:router:metadata", b"{" + b" " * (MAX_NODE_VALUE_BYTES * 2) + b"}")  # its own, larger limit
    snapshot = read_once(redis_db)
    assert snapshot.up
    assert snapshot.gpu["10.0.0.5:11434"].raw == json.dumps(GPU).encode()
    big = snapshot.gpu["10.0.0.6:11434"]
    assert big.raw is None and "exceeds" in big.error and not big.dropped
    assert snapshot.metadata.raw is not None


def test_max_value_bytes_lowers_the_node_limit_too(redis_db):
    redis_db.client.set("sollol:rpc:node:10.0.0.45:50052", json.dumps(RPC_NODE))
    r = reader(redis_db, max_value_bytes=16)
    try:
        snapshot = r.read(time.monotonic() + 5)
    finally:
        r.close()
    assert "exceeds the 16 bytes" in snapshot.rpc_nodes["10.0.0.45:50052"].error


def test_keys_past_the_prefix_budget_are_dropped_not_fetched(redis_db):
    value = b"x" * 60_000
    pipe = redis_db.client.pipeline(transaction=False)
    for index in range(100):
        pipe.set(f"sollol:gpu:10.0.0.{index}:11434", value)
    pipe.execute()
    snapshot = read_once(redis_db)
    fetched = [v for v in snapshot.gpu.values() if v.raw is not None]
    dropped = [v for v in snapshot.gpu.values() if v.dropped]
    assert len(fetched) == MAX_PREFIX_BYTES // len(value)
    assert len(fetched) + len(dropped) == 100
    assert not any(v.late for v in dropped)


def test_a_key_that_changes_type_costs_only_itself(redis_db):
    redis_db.client.set("sollol:gpu:10.0.0.5:11434", json.dumps(GPU))
    redis_db.client.lpush("sollol:gpu:10.0.0.6:11434", "a list")
    snapshot = read_once(redis_db)
    assert snapshot.up
    assert snapshot.gpu["10.0.0.5:11434"].raw is not None
    assert "WRONGTYPE" in snapshot.gpu["10.0.0.6:11434"].error


def test_a_read_that_runs_out_of_time_after_the_metadata_keeps_redis_up(redis_db):
    redis_db.client.set("sollol:router:metadata", json.dumps({"nodes": [], "metrics": {}}))
    pipe = redis_db.client.pipeline(transaction=False)
    for index in range(30_000):
        pipe.set(f"sollol:gpu:10.0.{index // 256}.{index % 256}:11434", "{}")
    pipe.execute()
    r = reader(redis_db, scan_count=10)  # thousands of SCAN round trips: longer than the deadline
    try:
        started = time.monotonic()
        snapshot = r.read(started + 0.3)
    finally:
        r.close()
    assert time.monotonic() - started < 1.5
    assert snapshot.up and snapshot.error == ""
    assert snapshot.metadata.raw is not None
    # the prefix it was reading says so (while listing the keys, or as keys not read in time); the next one too
    late = [v for v in snapshot.gpu.values() if v.late]
    assert "gpu" in snapshot.section_errors or (late and all(v.dropped and v.raw is None for v in late))
    assert "rpc_nodes" in snapshot.section_errors


def test_a_redis_that_is_gone_is_down(redis_db):
    r = RedisReader("redis://127.0.0.1:9/0", 0.5, 1_048_576, 500, False)
    try:
        snapshot = r.read(time.monotonic() + 2)
    finally:
        r.close()
    assert not snapshot.up and not snapshot.answered and snapshot.error
