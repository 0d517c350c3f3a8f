#!/usr/bin/env python3
"""Event subscriber throughput and memory: how many SOLLOL activity events per second the exporter counts with
at most a quarter of one core and none lost, whether a burst published at full speed is counted in full, and its
RSS after a million events with label churn.

A real redis-server and the real exporter (events enabled, nothing else to probe) on loopback. For each rate,
ollama_response events are published for a fixed time at that pace; the exporter's CPU over the window comes
from /proc, and the events it counted from its own /metrics. Then a burst of 436-byte ollama_error events (a
node refusing connections under load) is published by another process as fast as Redis takes them: 100,000 of
them are 48 MB on the wire, past Redis' 32 MB output buffer limit for a subscriber that does not keep up. Then
a million events whose node and model names keep changing (all past the label caps after the first few
hundred) are published as fast as Redis takes them, and RSS is read before and after.

    .venv/bin/python bench/events_bench.py [--rates 1000,2000,4000,8000] [--seconds 10] [--burst 100000] [--churn 1000000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scrape_bench import cpu_seconds, rss_bytes
from tests.faults.test_event_burst import MODEL, NODE, REFUSED, publish, settled
from tests.support.collect import base_config
from tests.support.exporter import ExporterProcess, parse, value
from tests.support.net import wait_for
from tests.support.redis_server import RedisServer
from tests.support.sollol_events import ollama_error

CHANNEL = "sollol:dashboard:ollama:activity"
CORE_SHARE = 0.25


def event(node: str, model: str) -> bytes:
    return json.dumps({"timestamp": time.time(), "backend": node, "event_type": "ollama_response", "severity": "info",
                       "details": {"model": model, "latency_ms": 842.1, "status_code": 200, "operation": "chat"}}).encode()


def received(exporter: ExporterProcess) -> float:
    return value(parse(requests.get(exporter.url + "/metrics", timeout=30).text), "sollol_events_received_total", channel="ollama") or 0.0


def losses(exporter: ExporterProcess) -> float:
    return value(parse(requests.get(exporter.url + "/metrics", timeout=30).text), "sollol_events_subscription_losses_total") or 0.0


def burst(exporter: ExporterProcess, redis_server: RedisServer, count: int) -> None:
    """Publish `count` events at full speed from another process and report what the exporter made of them."""
    message = ollama_error(NODE, MODEL, REFUSED, 2.1).encode()
    before, lost_before, rss_before = received(exporter), losses(exporter), rss_bytes(exporter.process.pid)
    started = time.monotonic()
    delivered = publish(redis_server.port, message, count)
    published_in = time.monotonic() - started
    counted = settled(lambda: received(exporter), before + count) - before
    print(f"burst: {count} events of {len(message)} bytes published in {published_in:.2f} s ({count / published_in:.0f}/s), "
          f"{delivered} delivered, {counted:.0f} counted, subscription losses reported {losses(exporter) - lost_before:.0f}; "
          f"RSS {rss_before / 2**20:.1f} MiB before, {rss_bytes(exporter.process.pid) / 2**20:.1f} MiB after, "
          f"peak {peak_rss_bytes(exporter.process.pid) / 2**20:.1f} MiB")


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def publish_at(redis, rate: int, seconds: float, make) -> int:
    """Publish `rate` events a second for `seconds`, in 10 ms batches; how many were published."""
    sent, started = 0, time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(rate * min(seconds, elapsed + 0.01))
        if due > sent:
            pipe = redis.pipeline(transaction=False)
            for index in range(sent, due):
                pipe.publish(CHANNEL, make(index))
            pipe.execute()
            sent = due
        time.sleep(max(0.0, started + (sent / rate) - time.monotonic()))
    return sent


def churn(exporter: ExporterProcess, redis_server: RedisServer, count: int) -> None:
    """`count` events whose node and model names all differ, and the RSS they leave behind."""
    pid = exporter.process.pid
    rss_before = rss_bytes(pid)
    before = received(exporter)
    started = time.monotonic()
    batch = 10_000
    for offset in range(0, count, batch):
        pipe = redis_server.client.pipeline(transaction=False)
        for index in range(offset, min(count, offset + batch)):
            pipe.publish(CHANNEL, event(f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}:11434", f"model-{index}"))
        pipe.execute()
        while received(exporter) - before < offset - 5 * batch:  # stay within Redis' output buffer for subscribers
            time.sleep(0.05)
    wait_for(lambda: received(exporter) - before >= count, 300, interval=0.5, what="churn counted")
    elapsed = time.monotonic() - started
    print(f"label churn: {count} events with {count} distinct node and model names in {elapsed:.1f} s "
          f"({count / elapsed:.0f}/s); RSS {rss_before / 2**20:.1f} MiB before, {rss_bytes(pid) / 2**20:.1f} MiB after")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,2000,4000,8000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=100_000)
    parser.add_argument("--churn", type=int, default=1_000_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="events-bench-"))
    redis_server = RedisServer(workdir)
    config = base_config(redis_server.url, ollama={"discover": False}, rpc_backends={"discover": False})
    exporter = ExporterProcess(config, workdir)
    try:
        wait_for(lambda: value(parse(requests.get(exporter.url + "/metrics", timeout=10).text), "sollol_events_subscribed") == 1, 10)
        pid = exporter.process.pid
        same = event("10.0.0.5:11434", "llama3.2:3b")
        print(f"{'events/s':>9} {'published':>10} {'counted':>10} {'lost':>6} {'CPU (share of a core)':>22}")
        best = 0
        for rate in (int(r) for r in args.rates.split(",")):
            before = received(exporter)
            cpu0 = cpu_seconds(pid)
            started = time.monotonic()
            sent = publish_at(redis_server.client, rate, args.seconds, lambda _: same)
            wait_for(lambda before=before, sent=sent: received(exporter) - before >= sent, 30, interval=0.2, what="all counted") if sent else None
            share = (cpu_seconds(pid) - cpu0) / (time.monotonic() - started)
            counted = received(exporter) - before
            lost = sent - counted
            print(f"{rate:>9} {sent:>10} {counted:>10.0f} {lost:>6.0f} {share:>22.3f}")
            if lost == 0 and share <= CORE_SHARE:
                best = max(best, rate)
        print(f"sustained with <= {CORE_SHARE} of a core and no event lost: {best} events/s")
        if args.burst:
            burst(exporter, redis_server, args.burst)

        if args.churn:
            churn(exporter, redis_server, args.churn)
    finally:
        exporter.stop()
        redis_server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
