"""Every panel query, annotation query and template variable of every dashboard, run on a real Prometheus (with
the shipped recording rules) that scraped the real exporter watching a populated cluster: real redis-server holding
each SOLLOL metadata layout and carrying SOLLOL's activity events, a real llama.cpp coordinator with two rpc-server
workers (plus an idle one answering the ggml handshake), a real gRPC health server, and the Ollama and dashboard
stand-ins. Each query must parse and return at least one series."""

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
from tests.support.exporter import ExporterProcess, value
from tests.support.grpc_health_server import HealthServer
from tests.support.net import free_port, wait_for
from tests.support.prometheus_stack import Prometheus
from tests.support.replay import ReplayServer, dashboard_routes, ollama_routes
from tests.support.sollol_events import ActivityPublisher

pytestmark = pytest.mark.llama
ROOT = Path(__file__).resolve().parent.parent.parent
LOOP = "127.0.0.1"
# Panels without a PromQL query, and why.
NO_QUERY = {"Active alerts": "alert list panel: reads alerts from the Alertmanager data source, not PromQL"}
SUBSTITUTIONS = {"$__rate_interval": "15s", "$__interval": "2s", "$coordinator": ".*", "$backend": ".*", "$node": ".*", "$model": ".*"}
# Recorded series the dashboards read: the test Prometheus evaluates the shipped rules every second.
RECORDED = ("node:sollol_requests:rate5m", "model:sollol_request_errors:ratio_rate5m", "model:sollol_request_duration_seconds:quantile_rate5m",
            "coordinator_model:sollol_coordinator_request_duration_seconds:quantile_rate5m", "coordinator_model:sollol_coordinator_completion_tokens:rate5m")
SLOW_NODE = "10.0.0.6:11434"  # a node SOLLOL sends requests to that the exporter does not probe


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
        wait_for(lambda: value(exporter.scrape(), "sollol_events_subscribed") == 1, 15, what="the exporter subscribed to SOLLOL's channels")
        # SOLLOL's activity while Prometheus scrapes: requests to the probed stand-in and to a node it does not probe,
        # coordinator requests and lifecycle events for the coordinator named "main"
        started.append(ActivityPublisher(client, ollama.address, SLOW_NODE, f"{LOOP}:{coordinator.port}").start())

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
        wait_for(lambda: all(prometheus.query(rule) for rule in RECORDED), 30, what="the recording rules evaluated")
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


def all_annotations():
    for name, dashboard in dashboards().items():
        for annotation in dashboard.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                yield pytest.param(name, annotation["name"], annotation["expr"], id=f"{name}/annotation/{annotation['name']}")


def annotations_over(prometheus, expr: str, seconds: float = 120) -> list[dict]:
    """As Grafana runs an annotation query: over the time range, one point per step."""
    end = time.time()
    reply = requests.get(f"{prometheus.url}/api/v1/query_range", timeout=10,
                         params={"query": substitute(expr), "start": end - seconds, "end": end, "step": "1s"}).json()
    assert reply["status"] == "success", reply
    return reply["data"]["result"]


@pytest.mark.parametrize("dashboard, name, expr", list(all_annotations()))
def test_annotation_query_marks_the_events(populated, dashboard, name, expr):
    series = {(s["metric"].get("coordinator"), s["metric"].get("event")): [t for t, _ in s["values"]] for s in annotations_over(populated, expr)}
    # starts and restarts keep coming: their counters increase, marked for as long as they do, beyond the window in
    # which the counter first appeared; the one model load only ever made its counter appear at 1, and is marked too
    assert {("main", "start"), ("main", "restart"), ("main", "model_load")} <= set(series), f"{dashboard}: {name}: {sorted(series)}"
    starts = series[("main", "start")]
    assert max(starts) - min(starts) > 15, f"{dashboard}: {name}: starts marked only when the counter appeared"


def test_the_lifecycle_annotation_is_on_the_coordinator_dashboards():
    with_annotation = {name for name, *_ in (p.values for p in all_annotations())}
    assert with_annotation == {"sollol-inference", "sollol-requests"}


def test_template_variables_find_values(populated):
    for name, dashboard in dashboards().items():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            selector, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]).groups()
            reply = requests.get(f"{populated.url}/api/v1/label/{label}/values", params={"match[]": selector}, timeout=10).json()
            assert reply["status"] == "success" and reply["data"], f"{name}: ${variable['name']} has no values"
