"""Every panel query of every dashboard, run on a real Prometheus that scraped the real exporter watching a
populated cluster: real redis-server holding each SOLLOL metadata layout, a real llama.cpp coordinator with two
rpc-server workers (plus an idle one answering the ggml handshake), a real gRPC health server, and the Ollama and
dashboard stand-ins. Each query must parse and return at least one series."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.fixtures.sollol import GPU, RPC_NODE, VARIANT_A, VARIANT_B, VARIANT_D, fresh, routing_event
from tests.support import llama
from tests.support.collect import base_config
from tests.support.exporter import ExporterProcess
from tests.support.grpc_health_server import HealthServer
from tests.support.net import free_port, wait_for
from tests.support.prometheus_stack import Prometheus
from tests.support.replay import ReplayServer, dashboard_routes, ollama_routes

pytestmark = pytest.mark.llama
ROOT = Path(__file__).resolve().parent.parent.parent
LOOP = "127.0.0.1"
# Panels without a PromQL query, and why.
NO_QUERY = {"Active alerts": "alert list panel: reads alerts from the Alertmanager data source, not PromQL"}
SUBSTITUTIONS = {"$__rate_interval": "15s", "$__interval": "2s", "$coordinator": ".*", "$backend": ".*", "$node": ".*"}


def dashboards():
    return {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / "grafana" / "dashboards").glob("*.json"))}


def substitute(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


@pytest.fixture(scope="module")
def populated(tmp_path_factory, redis_server, tiny_model):
    tmp = tmp_path_factory.mktemp("cluster")
    redis_server.client.flushall()
    started, stop = [], threading.Event()
    try:
        workers = [llama.start_rpc_server(log_dir=tmp) for _ in range(2)]
        idle_worker = llama.start_rpc_server(log_dir=tmp)
        started += [*workers, idle_worker]
        coordinator = llama.start_llama_server(tiny_model, rpc=[(LOOP, w.port) for w in workers], log_dir=tmp)
        started.append(coordinator)
        ollama = ReplayServer(ollama_routes())
        dashboard = ReplayServer(dashboard_routes())
        health = HealthServer()
        started += [ollama, dashboard, health]
        agent_backend = free_port()
        health.set(f"rpc-server:{agent_backend}", True)

        client = redis_server.client
        doc_a = json.loads(fresh(VARIANT_A))
        doc_a["nodes"][0]["host"] = ollama.address
        client.set("sollol:router:metadata", json.dumps({**VARIANT_B, "rpc_backends": [{"host": LOOP, "port": str(workers[0].port)}]}))
        client.set(f"sollol:rpc:node:{LOOP}:{workers[1].port}", json.dumps(RPC_NODE))

        config = base_config(
            redis_server.url,
            coordinators=[{"url": f"http://{LOOP}:{coordinator.port}", "name": "main", "rpc_backends": [f"{LOOP}:{w.port}" for w in workers]}],
            rpc_backends={"timeout": "300ms", "static": [
                {"address": f"{LOOP}:{agent_backend}", "probe": "grpc", "grpc": {"port": health.port}},
                {"address": f"{LOOP}:{idle_worker.port}", "probe": "ggml"},
            ]},
            dashboard={"enabled": True, "url": dashboard.url},
        )
        exporter = ExporterProcess(config, tmp)
        started.append(exporter)
        prometheus = Prometheus(tmp, f"{LOOP}:{exporter.port}", f"{LOOP}:{free_port()}", scrape_interval="1s")
        started.append(prometheus)

        def feed():
            """What a running SOLLOL keeps writing: both frequent metadata writers, GPU reports, routing events."""
            turn = 0
            while not stop.is_set():
                doc_a["timestamp"] = time.time()
                layout = json.dumps(doc_a) if turn % 2 == 0 else fresh(VARIANT_D)
                client.set("sollol:router:metadata", layout, ex=30)
                client.set("sollol:gpu:10.0.0.5:11434", json.dumps(dict(GPU, timestamp=time.time())), ex=120)
                client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event(node=ollama.address))})
                turn += 1
                stop.wait(1.0)

        time.sleep(2)  # the exporter reads the B layout (worker list) before the writers loop takes over
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        for _ in range(3):
            llama.chat(coordinator.port, "tell me something", max_tokens=8)
            time.sleep(1)
        wait_for(lambda: prometheus.query("sollol_router_task_type_requests_total") and prometheus.query("sollol_rpc_backend_device_memory_free_bytes"),
                 30, what="the exporter's data in Prometheus")
        time.sleep(16)  # enough samples for every rate window
        yield prometheus
    finally:
        stop.set()
        for item in reversed(started):
            item.stop()


def all_queries():
    for name, dashboard in dashboards().items():
        for panel in dashboard["panels"]:
            if not panel.get("targets"):
                yield pytest.param(name, panel["title"], None, id=f"{name}/{panel['title']}")
            for target in panel.get("targets", []):
                yield pytest.param(name, panel["title"], target["expr"], id=f"{name}/{panel['title']}/{target['refId']}")


@pytest.mark.parametrize("dashboard, title, expr", list(all_queries()))
def test_panel_query_returns_data(populated, dashboard, title, expr):
    if expr is None:
        assert title in NO_QUERY, f"{dashboard}: panel {title!r} has no query and no reason to be empty"
        return
    result = populated.query(substitute(expr))
    assert result, f"{dashboard}: {title}: no series for {expr}"


def test_template_variables_find_values(populated):
    for name, dashboard in dashboards().items():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]).groups()
            reply = requests.get(f"{populated.url}/api/v1/label/{label}/values", params={"match[]": metric}, timeout=10).json()
            assert reply["data"], f"{name}: ${variable['name']} has no values"
