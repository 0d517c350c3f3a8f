#!/usr/bin/env python3
"""How many series the exporter exports per RPC worker, per Ollama node and per model: the figures to size a
Prometheus (or a remote-write budget) by.

A real redis-server with OllamaPool metadata naming the nodes, Ollama stand-ins, loopback listeners as workers
and SOLLOL activity events for each node and model (one operation, successes and an error each); one scrape of
the real exporter, series counted by the label they carry.

    .venv/bin/python bench/series_count.py [--workers 4] [--nodes 3] [--models 2]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fixtures.llamacpp_metrics import CURRENT
from tests.fixtures.sollol import VARIANT_A, fresh
from tests.support.collect import base_config
from tests.support.exporter import ExporterProcess
from tests.support.net import wait_for
from tests.support.redis_server import RedisServer
from tests.support.replay import ReplayServer, Route, ollama_routes

CHANNEL = "sollol:dashboard:ollama:activity"
RPC_CHANNEL = "sollol:dashboard:rpc:activity"


def samples(url: str) -> list:
    text = requests.get(url + "/metrics", timeout=30).text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--models", type=int, default=2)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="series-"))
    redis_server = RedisServer(workdir)
    nodes = [ReplayServer(ollama_routes()) for _ in range(args.nodes)]
    coordinator = ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route(CURRENT, content_type="text/plain; version=0.0.4"),
                                "/props": Route({"build_info": "b6790-abcdef", "total_slots": 4, "is_sleeping": False})})
    listeners = []
    for _ in range(args.workers):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listeners.append(listener)
    metadata = json.loads(fresh(VARIANT_A))
    metadata["nodes"] = [{**metadata["nodes"][0], "url": node.url, "host": node.address} for node in nodes]
    redis_server.client.set("sollol:router:metadata", json.dumps(metadata), ex=300)
    config = base_config(redis_server.url, rpc_backends={"static": [{"address": f"127.0.0.1:{listener.getsockname()[1]}"} for listener in listeners]},
                         coordinators=[{"url": coordinator.url, "name": "main"}])
    exporter = ExporterProcess(config, workdir)
    try:
        wait_for(lambda: any(s.name == "sollol_events_subscribed" and s.value == 1 for s in samples(exporter.url)), 10)
        for node in nodes:
            for index in range(args.models):
                for outcome in ("ollama_response", "ollama_response", "ollama_error"):
                    details = {"model": f"model-{index}", "latency_ms": 300.0, "operation": "chat", "error": "HTTP 500"}
                    redis_server.client.publish(CHANNEL, json.dumps({"timestamp": time.time(), "backend": node.address,
                                                                     "event_type": outcome, "details": details}))
        for index in range(args.models):
            for kind in ("rpc_response", "rpc_error"):
                details = {"model": f"model-{index}", "latency_ms": 2000.0, "completion_tokens": 64, "error": "boom"}
                redis_server.client.publish(RPC_CHANNEL, json.dumps({"timestamp": time.time(), "backend": coordinator.address,
                                                                     "event_type": kind, "details": details}))
        expected = args.nodes * args.models * 3 + args.models * 2
        wait_for(lambda: sum(s.value for s in samples(exporter.url) if s.name == "sollol_events_received_total") >= expected, 10)
        found = samples(exporter.url)
        total = len(found)
        with_model = [s for s in found if "model" in s.labels and "node" in s.labels and s.name.startswith(("sollol_request", "sollol_requests"))]
        per_worker = sum(1 for s in found if "backend" in s.labels) / args.workers
        per_node = sum(1 for s in found if "node" in s.labels and "model" not in s.labels) / args.nodes
        per_model = len(with_model) / (args.nodes * args.models)
        loaded = sum(1 for s in found if "node" in s.labels and "model" in s.labels and s.name.startswith("sollol_ollama_model"))
        coordinator_model = sum(1 for s in found if s.labels.get("coordinator") == "main" and "model" in s.labels)
        per_coordinator = sum(1 for s in found if s.labels.get("coordinator") == "main" and "model" not in s.labels and "backend" not in s.labels)
        fixed = total - sum(1 for s in found if {"backend", "node"} & set(s.labels) or "coordinator" in s.labels)
        print(f"one scrape: {total} series ({args.workers} workers, {args.nodes} nodes, {args.models} models per node)")
        print(f"{'per RPC worker':<44} {per_worker:6.1f}")
        print(f"{'per Ollama node (probe and SOLLOL view)':<44} {per_node:6.1f}")
        print(f"{'per model loaded on a node (/api/ps)':<44} {loaded / args.nodes:6.1f}")
        print(f"{'per node, model and operation with traffic':<44} {per_model:6.1f}")
        print(f"{'per coordinator (probe and its /metrics)':<44} {per_coordinator:6.0f}")
        print(f"{'per coordinator and model with traffic':<44} {coordinator_model / args.models:6.1f}")
        print(f"{'fixed (exporter, Redis, metadata, process)':<44} {fixed:6d}")
    finally:
        exporter.stop()
        coordinator.stop()
        for node in nodes:
            node.stop()
        for listener in listeners:
            listener.close()
        redis_server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
