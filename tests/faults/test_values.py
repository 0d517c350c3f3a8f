"""Every value from outside has a cost limit (issue "The scrape core, owned and bounded", rows 5-8 and 11-13).

Each test here failed on the exporter before: hostile Redis values cost seconds of CPU and stayed in memory,
a coordinator's /metrics could replace another's series and was re-exported without bound, the metadata key could
name any number of targets, absurd numbers became +Inf or hid staleness, a stalled coordinator's state depended on
thread timing, and two long label values could become one. Each runs against the real exporter on loopback.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest

from tests.fixtures.sollol import GPU, RPC_NODE, VARIANT_A
from tests.support.collect import base_config
from tests.support.exporter import one_hot, parse, series, value
from tests.support.hostile import TrickleRoute, TrickleServer
from tests.support.replay import ReplayServer, Route
from tests.support.sollol_events import OLLAMA_CHANNEL, RPC_CHANNEL, rpc_event

METRICS = "text/plain; version=0.0.4"
# The documented limits (README, "Every scrape keeps its own deadline"), as numbers: these tests also ran against the
# exporter from before they existed.
PREFIX_BUDGET = 4 * 1_048_576  # bytes of GPU reports one read fetches
MAX_SERIES = 500  # series of one coordinator's /metrics passed through
MAX_TARGETS = 1_000  # Ollama nodes, and workers, one metadata value names
QUIET = {"ollama": {"discover": False}, "rpc_backends": {"discover": False}}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def timed_scrape(exporter, timeout: float = 10.0):
    """(samples, body bytes, wall seconds, exporter CPU seconds) of one scrape."""
    cpu, started = cpu_seconds(exporter.process.pid), time.monotonic()
    reply = exporter.scrape_text(timeout=timeout)
    assert reply.status_code == 200
    return parse(reply.text), len(reply.content), time.monotonic() - started, cpu_seconds(exporter.process.pid) - cpu


def lines_of(text: str, metric: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(metric + "{")]


@pytest.fixture
def servers():
    started = []

    def start(server):
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# Row 5: any Redis writer can store 64 keys sollol:gpu:* of a megabyte each.

def _megabyte_report() -> str:
    # Many short strings: the costliest JSON to scan and decode per byte
    return json.dumps({"vendor": "nvidia", "gpus": ["x"] * 166_000, "timestamp": time.time(), "node_id": "h"})


def test_megabyte_gpu_keys_are_skipped_and_counted_and_redis_stays_up(start_exporter, redis_db):
    exporter = start_exporter(base_config(redis_db.url, **QUIET))
    baseline = rss_mib(exporter.process.pid)
    redis_db.client.set("sollol:gpu:10.0.0.5:11434", json.dumps({**GPU, "timestamp": time.time()}), ex=120)
    huge = _megabyte_report()
    for index in range(64):
        redis_db.client.set(f"sollol:gpu:10.0.1.{index}:11434", huge, ex=120)
    for _ in range(3):
        samples, _, wall, cpu = timed_scrape(exporter, timeout=3)
        assert value(samples, "sollol_redis_up") == 1
        assert value(samples, "sollol_gpu_devices", node="10.0.0.5:11434") == 1  # the good key costs nothing
        assert value(samples, "sollol_exporter_invalid_entries", collector="gpu") == 64
        assert cpu < 0.5, f"a scrape cost {cpu:.2f} s of CPU"
        assert wall < 1.5
    assert rss_mib(exporter.process.pid) - baseline < 20


def test_many_gpu_keys_within_the_size_limit_cost_at_most_the_read_budget(start_exporter, redis_db):
    exporter = start_exporter(base_config(redis_db.url, **QUIET))
    baseline = rss_mib(exporter.process.pid)
    report = json.dumps({"vendor": "nvidia", "gpus": ["x"] * 12_900, "timestamp": time.time()})  # just under 64 KiB
    pipe = redis_db.client.pipeline(transaction=False)
    for index in range(500):
        pipe.set(f"sollol:gpu:10.0.{index // 256}.{index % 256}:11434", report, ex=120)
    pipe.execute()
    for _ in range(3):
        samples, _, _wall, cpu = timed_scrape(exporter, timeout=3)
        assert value(samples, "sollol_redis_up") == 1
        read = len(series(samples, "sollol_gpu_devices"))
        assert 0 < read <= PREFIX_BUDGET // len(report)
        assert value(samples, "sollol_exporter_dropped_entries", collector="gpu") >= 500 - read  # plus the devices past 64
        assert cpu < 0.6, f"a scrape cost {cpu:.2f} s of CPU"
    redis_db.client.flushall()
    samples, *_ = timed_scrape(exporter)
    assert series(samples, "sollol_gpu_devices") == {}
    # Bounded by the read budget (4 MiB) and glibc's per-thread arenas; before, 500 such keys took some 60 MiB more
    assert rss_mib(exporter.process.pid) - baseline < 20


# Row 6: a coordinator's /metrics with a `coordinator` label.

def test_a_coordinator_label_from_metrics_never_replaces_the_exporters_own(start_exporter, redis_db, servers):
    plain = servers(ReplayServer({"/health": Route({"status": "ok"}),
                                  "/metrics": Route(b"llamacpp:requests_processing 1\n", content_type=METRICS)}))
    spoof = servers(ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route(
        b'llamacpp:requests_processing{coordinator="plain"} 99\n', content_type=METRICS)}))
    # "a-spoof" sorts first: its series are rendered before the genuine coordinator's
    coordinators = [{"url": spoof.url, "name": "a-spoof", "props_interval": "1h"}, {"url": plain.url, "name": "plain", "props_interval": "1h"}]
    exporter = start_exporter(base_config(redis_db.url, coordinators=coordinators, **QUIET))
    text = exporter.scrape_text().text
    assert len([line for line in lines_of(text, "sollol_coordinator_requests_processing") if '{coordinator="plain"' in line]) == 1
    found = {}
    for labels, count in series(parse(text), "sollol_coordinator_requests_processing").items():
        labels = {k: v for k, v in labels if v}  # an empty label is no label
        found.setdefault(labels["coordinator"], []).append((labels, count))
    assert found == {"plain": [({"coordinator": "plain"}, 1)], "a-spoof": [({"coordinator": "a-spoof", "exported_coordinator": "plain"}, 99)]}


# Row 7: pass-through of a coordinator's /metrics.

def test_a_coordinators_metrics_pass_through_is_capped_and_the_rest_counted(start_exporter, redis_db, servers):
    coordinator = servers(ReplayServer({"/health": Route({"status": "ok"}),
                                        "/metrics": Route(b"llamacpp:tokens_predicted_total 7\n", content_type=METRICS)}))
    exporter = start_exporter(base_config(redis_db.url, coordinators=[{"url": coordinator.url, "name": "big", "props_interval": "1h"}], **QUIET))
    samples, small, _, _ = timed_scrape(exporter)
    baseline = rss_mib(exporter.process.pid)
    hostile = ["# TYPE llamacpp:hostile gauge"] + [f'llamacpp:hostile{{i="{i}"}} {i}' for i in range(120_000)]
    coordinator.routes["/metrics"] = Route(("\n".join(hostile) + "\n").encode(), content_type=METRICS)
    for _ in range(3):
        samples, size, wall, cpu = timed_scrape(exporter)
        assert len(series(samples, "sollol_coordinator_hostile")) == MAX_SERIES
        assert value(samples, "sollol_exporter_dropped_entries", collector="coordinator") == 120_000 - MAX_SERIES
        assert value(samples, "sollol_coordinator_metrics_up", coordinator="big") == 1
        assert size < small + 100_000, f"{size} bytes per scrape"
        assert cpu < 0.5 and wall < 1.5
    assert rss_mib(exporter.process.pid) - baseline < 25  # a 3.6 MB body is read; before, 240 MiB more


# Row 8, the values: one metadata key naming thousands of nodes and workers.

def test_the_metadata_key_names_at_most_max_targets_of_each_kind(start_exporter, redis_db):
    count = MAX_TARGETS + 1_500
    doc = {"nodes": [{"host": f"127.1.{i // 256}.{i % 256}", "port": 9} for i in range(count)],
           "rpc_backends": [{"host": f"127.2.{i // 256}.{i % 256}", "port": 9} for i in range(count)], "metrics": {}}
    redis_db.client.set("sollol:router:metadata", json.dumps(doc))
    exporter = start_exporter(base_config(redis_db.url, ollama={"timeout": "500ms"}, rpc_backends={"timeout": "300ms"}))
    samples, *_ = timed_scrape(exporter)
    assert len(series(samples, "sollol_ollama_node_up")) == MAX_TARGETS
    assert len(series(samples, "sollol_rpc_backend_up")) == MAX_TARGETS
    assert value(samples, "sollol_exporter_dropped_entries", collector="metadata") == 2 * (count - MAX_TARGETS)
    assert len(samples) < 30 * MAX_TARGETS


def test_workers_of_a_deleted_ttl_less_metadata_value_are_forgotten_at_once(start_exporter, redis_db):
    doc = {"nodes": [{"host": "127.1.0.1", "port": 9}], "rpc_backends": [{"host": "127.2.0.1", "port": 9}], "metrics": {}}
    redis_db.client.set("sollol:router:metadata", json.dumps(doc))  # no TTL, as CoordinatorManager writes it
    exporter = start_exporter(base_config(redis_db.url, ollama={"timeout": "500ms"}, rpc_backends={"timeout": "300ms"}))
    samples, *_ = timed_scrape(exporter)
    assert value(samples, "sollol_rpc_backend_up", backend="127.2.0.1:9") == 0
    assert value(samples, "sollol_ollama_node_up", node="127.1.0.1:9") == 0
    redis_db.client.delete("sollol:router:metadata")  # deleted, not expired: a TTL-less value never expires
    samples, *_ = timed_scrape(exporter)
    assert series(samples, "sollol_rpc_backend_up") == {}
    assert series(samples, "sollol_ollama_node_up") == {}


# Row 11: numbers outside what could be measured.

def test_absurd_numbers_are_invalid_values_not_infinities(start_exporter, redis_db):
    gpu = {"vendor": "nvidia", "timestamp": 1e308, "node_id": "10.0.0.5:11434",
           "gpus": [{"index": 0, "name": "RTX", "memory_total_mb": 1e308, "memory_free_mb": -1e308, "memory_used_mb": 6564,
                     "utilization_percent": 37, "temperature_c": 61}]}
    redis_db.client.set("sollol:gpu:10.0.0.5:11434", json.dumps(gpu), ex=120)
    redis_db.client.set("sollol:rpc:node:10.0.0.45:50052", json.dumps({**RPC_NODE, "cpu_ram_mb": 1e308}), ex=3600)
    pool = json.loads(json.dumps(VARIANT_A))
    pool["timestamp"] = 1e308  # from the future: would read as written just now, for ever
    pool["nodes"][0]["gpu_free_mem"] = 1e308
    redis_db.client.set("sollol:router:metadata", json.dumps(pool), ex=30)
    exporter = start_exporter(base_config(redis_db.url, **QUIET))
    text = exporter.scrape_text().text
    assert "Inf" not in text
    samples = parse(text)
    node = {"node": "10.0.0.5:11434", "gpu": "0"}
    assert value(samples, "sollol_gpu_memory_total_bytes", **node) is None
    assert value(samples, "sollol_gpu_memory_free_bytes", **node) is None
    assert value(samples, "sollol_gpu_memory_used_bytes", **node) == 6564 * 1_048_576
    assert value(samples, "sollol_gpu_report_timestamp_seconds", node="10.0.0.5:11434") is None  # SollolGpuTelemetryStale can fire
    assert value(samples, "sollol_exporter_invalid_entries", collector="gpu") == 3
    assert value(samples, "sollol_rpc_node_cpu_memory_bytes", backend="10.0.0.45:50052") is None
    assert value(samples, "sollol_exporter_invalid_entries", collector="rpc_nodes") == 1
    assert value(samples, "sollol_ollama_node_reported_gpu_free_bytes", node="10.0.0.5:11434") is None
    assert value(samples, "sollol_exporter_invalid_entries", collector="metadata") == 2


def test_an_infinite_latency_or_an_absurd_heartbeat_makes_the_event_invalid(start_exporter, redis_db):
    exporter = start_exporter(base_config(redis_db.url, **QUIET))
    deadline = time.monotonic() + 10
    while value(exporter.scrape(), "sollol_events_subscribed") != 1:
        assert time.monotonic() < deadline, "never subscribed"
        time.sleep(0.1)
    good = {"timestamp": time.time(), "backend": "10.0.0.2:11434", "event_type": "ollama_response", "severity": "info",
            "details": {"model": "m", "latency_ms": 120.0, "operation": "chat"}}
    infinite = json.dumps({**good, "details": {**good["details"], "latency_ms": math.inf}})  # JSON's Infinity
    assert "Infinity" in infinite
    redis_db.client.publish(OLLAMA_CHANNEL, json.dumps(good))
    redis_db.client.publish(OLLAMA_CHANNEL, infinite)
    redis_db.client.publish(RPC_CHANNEL, rpc_event("rpc_backend_connect", "rpc_registry", total_active=1e308, total_configured=2))
    deadline = time.monotonic() + 10
    while (samples := exporter.scrape()) and value(samples, "sollol_events_received_total", channel="rpc") != 1:
        assert time.monotonic() < deadline, "events not received"
        time.sleep(0.1)
    labels = {"node": "10.0.0.2:11434", "model": "m", "operation": "chat", "streaming": "false"}
    assert value(samples, "sollol_requests_total", outcome="success", **labels) == 1
    assert value(samples, "sollol_request_duration_seconds_count", **labels) == 1  # every counted request is observed
    assert value(samples, "sollol_events_invalid_total", channel="ollama") == 1
    assert value(samples, "sollol_events_invalid_total", channel="rpc") == 1
    assert series(samples, "sollol_coordinator_rpc_backends_active") == {}


# Row 12: one rule for a coordinator that does not answer in time.

def test_a_tls_handshake_that_never_finishes_is_hung_not_unreachable(start_exporter, redis_db, servers):
    silent = servers(TrickleServer({}))  # accepts, reads, never answers the ClientHello
    coordinators = [{"url": f"https://{silent.address}", "name": "tls", "timeout": "1s", "props_interval": "1h"}]
    exporter = start_exporter(base_config(redis_db.url, coordinators=coordinators, **QUIET))
    states = [one_hot(exporter.scrape(timeout=5), "sollol_coordinator_state", coordinator="tls") for _ in range(4)]
    assert states == ["hung"] * 4


def test_a_stalled_metrics_under_a_short_budget_is_stalled_every_time(start_exporter, redis_db, servers):
    metrics = b"# TYPE llamacpp:tokens_predicted_total counter\nllamacpp:tokens_predicted_total 42\n"
    slow = servers(TrickleServer({"/health": TrickleRoute(b"{}"), "/metrics": TrickleRoute(metrics, body_interval=1.0)}))
    # the coordinator's timeout is longer than the scrape's budget: the budget cuts /metrics
    coordinators = [{"url": slow.url, "name": "slow", "timeout": "5s", "props_interval": "1h"}]
    exporter = start_exporter(base_config(redis_db.url, coordinators=coordinators, **QUIET))
    states = []
    for _ in range(5):
        started = time.monotonic()
        states.append(one_hot(exporter.scrape(timeout=2), "sollol_coordinator_state", coordinator="slow"))
        assert time.monotonic() - started < 2.0
    assert states == ["stalled"] * 5


# Row 13: label values cut to 128 characters stay apart.

def test_long_label_values_sharing_their_beginning_stay_distinct(start_exporter, redis_db, servers):
    prefix = "gpu-box-" + "a" * 120
    for suffix in ("1", "2"):
        redis_db.client.set(f"sollol:gpu:{prefix}{suffix}:11434", json.dumps({**GPU, "timestamp": time.time()}), ex=120)
    body = "".join(f'llamacpp:slot_tokens{{slot="{"s" * 130}{n}"}} {n}\n' for n in (1, 2)).encode()
    coordinator = servers(ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route(body, content_type=METRICS)}))
    exporter = start_exporter(base_config(redis_db.url, coordinators=[{"url": coordinator.url, "name": "c", "props_interval": "1h"}], **QUIET))
    text = exporter.scrape_text().text
    for metric in ("sollol_gpu_devices", "sollol_gpu_memory_total_bytes", "sollol_coordinator_slot_tokens"):
        found = lines_of(text, metric)
        labels = [line.rsplit(" ", 1)[0] for line in found]
        assert len(found) == 2 and len(set(labels)) == 2, found
        assert all(len(part) <= 128 for line in labels for part in line.split('"')[1::2])
