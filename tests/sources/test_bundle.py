"""Sources: the worker set is built again only when what Redis names changes."""

from __future__ import annotations

from sollol_exporter.addresses import Address
from sollol_exporter.cluster import ClusterState
from sollol_exporter.sources.bundle import Sources
from tests.support.collect import base_config, make_config
from tests.support.net import free_port


def sources(tmp_path, discover: bool) -> Sources:
    config = make_config(tmp_path, base_config(f"redis://127.0.0.1:{free_port()}/0", rpc_backends={
        "discover": discover, "static": [{"address": "10.0.0.9:50052"}, {"address": "10.0.0.1:50052"}]}))
    return Sources(config, ClusterState(config.metadata.retention, config.metadata.stats_max_age))


def test_the_worker_set_follows_the_registrations(tmp_path):
    src = sources(tmp_path, discover=True)
    try:
        first, invalid = src.workers()
        assert list(first) == [Address("10.0.0.1", 50052), Address("10.0.0.9", 50052)]  # in address order
        assert invalid == 0
        assert src.workers()[0] is first  # nothing new from Redis: the same set, not built again
        with src.cluster.lock:
            src.cluster.registry_keys = ["10.0.0.5:50052", "not an address:x"]
        second, invalid = src.workers()
        assert list(second) == [Address("10.0.0.1", 50052), Address("10.0.0.5", 50052), Address("10.0.0.9", 50052)]
        assert second[Address("10.0.0.5", 50052)].sources == {"registry"}
        assert invalid == 1
        with src.cluster.lock:
            src.cluster.registry_keys = []
        assert list(src.workers()[0]) == [Address("10.0.0.1", 50052), Address("10.0.0.9", 50052)]
    finally:
        src.retire()


def test_without_discovery_redis_names_no_worker(tmp_path):
    src = sources(tmp_path, discover=False)
    try:
        with src.cluster.lock:
            src.cluster.registry_keys = ["10.0.0.5:50052"]
        assert list(src.workers()[0]) == [Address("10.0.0.1", 50052), Address("10.0.0.9", 50052)]
    finally:
        src.retire()


def test_a_read_not_shared_for_its_short_deadline_is_followed_not_overlapped():
    """A caller that may wait longer than the running read does not join it: it reads again, but only once that read
    has ended, so a peer is never asked twice at once (llama-server resets some /metrics gauges on every read)."""
    import threading
    import time

    from sollol_exporter.sources.bundle import Flights

    flights = Flights("test", threads=4)
    spans, release = [], threading.Event()

    def read(name):
        started = time.monotonic()
        if name == "short":
            release.wait(5)
        spans.append((name, started, time.monotonic()))
        return name

    now = time.monotonic()
    short, new_short = flights.submit("coordinator", read, "short", deadline=now + 1)
    long, new_long = flights.submit("coordinator", read, "long", deadline=now + 10)
    assert new_short and new_long and long is not short
    time.sleep(0.2)
    release.set()
    assert short.result(5) == "short" and long.result(5) == "long"
    (_, _, short_end), (_, long_start, _) = sorted(spans, key=lambda s: s[0] != "short")
    assert long_start >= short_end
    flights.pool.shutdown()
