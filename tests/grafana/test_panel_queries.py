"""Every panel query, annotation query and template variable of every dashboard, run on a real Prometheus (with
the shipped recording rules) that scraped the real exporter watching a populated cluster: real redis-server holding
each SOLLOL metadata layout and carrying SOLLOL's activity events, a real llama.cpp coordinator with two rpc-server
workers (plus an idle one answering the ggml handshake), a real gRPC health server, and the Ollama and dashboard
stand-ins. Each query must parse and return at least one series.

Twice: the committed dashboards on a Prometheus set up as the shipped one is (job "sollol", a `cluster` target
label), and the dashboards rendered for another setup (job "sollol-kube", a `k8s_cluster` target label) on a second
Prometheus scraping the same exporter under those names, with the recording rules mixin/rules.py renders for it.
$cluster is the cluster's label value, so a query that kept a default name (job "sollol", the `cluster` label) finds
nothing on the second one (the control below); that no selector lacks the matchers is test_dashboards.py's check."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from mixin.config import Config
from tests.fixtures.sollol import GPU, RPC_NODE, VARIANT_A, VARIANT_B, VARIANT_D, fresh, routing_event
from tests.support import llama
from tests.support.collect import base_config
from tests.support.exporter import ExporterProcess, value
from tests.support.grpc_health_server import HealthServer
from tests.support.mixin_prometheus import RenamedPrometheus
from tests.support.net import free_port, wait_for
from tests.support.prometheus_stack import Prometheus
from tests.support.replay import ReplayServer, dashboard_routes, ollama_routes
from tests.support.sollol_events import OLLAMA_CHANNEL, ActivityPublisher, ollama_response

pytestmark = pytest.mark.llama
ROOT = Path(__file__).resolve().parent.parent.parent
LOOP = "127.0.0.1"
# Panels without a PromQL query, and why.
NO_QUERY = {"Active alerts": "alert list panel: reads alerts from the Alertmanager data source, not PromQL",
            "Burn alerts": "alert list panel of the SLO alerts, from the Alertmanager data source"}
SUBSTITUTIONS = {"$__rate_interval": "15s", "$__interval": "2s", "$coordinator": ".*", "$backend": ".*", "$node": ".*", "$model": ".*",
                 "$slo": ".*"}
# Every recorded series: the test Prometheus evaluates the rules every second.
RECORDED = sorted({rule["record"] for group in yaml.safe_load((ROOT / "prometheus" / "rules" / "sollol-recording.yml").read_text())["groups"]
                   for rule in group["rules"]})
SLOW_NODE = "10.0.0.6:11434"  # a node SOLLOL sends requests to that the exporter does not probe
# The shipped setup (prometheus/prometheus.yml: job "sollol", cluster="sollol"), and another user's.
SHIPPED_CLUSTER = "sollol"
RENAMED = Config(job_selector='job="sollol-kube"', cluster_label="k8s_cluster")
RENAMED_CLUSTER = "kube-a"
STACKS = {"shipped": SHIPPED_CLUSTER, "renamed": RENAMED_CLUSTER}


@functools.lru_cache(maxsize=1)
def _load_generator():
    spec = importlib.util.spec_from_file_location("grafana_generate", ROOT / "grafana" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboards(stack: str = "shipped"):
    if stack == "shipped":
        return {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / "grafana" / "dashboards").glob("*.json"))}
    return {name.removesuffix(".json"): model for name, model in sorted(_load_generator().build(RENAMED).items())}


def streamed_response(node: str, model: str, latency_ms: float) -> str:
    """SOLLOL's ollama_response for a stream: the same event with `streaming: true` in its details."""
    event = json.loads(ollama_response(node, model, latency_ms))
    event["details"]["streaming"] = True
    return json.dumps(event)


def substitute(expr: str, stack: str = "shipped") -> str:
    for variable, replacement in {**SUBSTITUTIONS, "$cluster": STACKS[stack]}.items():
        expr = expr.replace(variable, replacement)
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
        renamed = RenamedPrometheus(tmp / "renamed", f"{LOOP}:{exporter.port}", RENAMED, RENAMED_CLUSTER)
        started.append(renamed)
        stacks = {"shipped": prometheus, "renamed": renamed}
        wait_for(lambda: value(exporter.scrape(), "sollol_events_subscribed") == 1, 15, what="the exporter subscribed to SOLLOL's channels")
        # SOLLOL's activity while Prometheus scrapes: requests to the probed stand-in and to a node it does not probe,
        # coordinator requests and lifecycle events for the coordinator named "main"
        started.append(ActivityPublisher(client, ollama.address, SLOW_NODE, f"{LOOP}:{coordinator.port}").start())

        def feed():
            """What a running SOLLOL keeps writing: both frequent metadata writers, GPU reports, routing events, and
            a streamed generation now and then (the activity publisher's requests are unary)."""
            turn = 0
            while not stop.is_set():
                doc_a["timestamp"] = time.time()
                layout = json.dumps(doc_a) if turn % 2 == 0 else fresh(VARIANT_D)
                client.set("sollol:router:metadata", layout, ex=30)
                client.set("sollol:gpu:10.0.0.5:11434", json.dumps(dict(GPU, timestamp=time.time())), ex=120)
                client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event(node=ollama.address))})
                client.publish(OLLAMA_CHANNEL, streamed_response(ollama.address, "llama3.2:3b", 45_000.0 + 1_000.0 * (turn % 10)))
                turn += 1
                stop.wait(1.0)

        time.sleep(2)  # the exporter reads the B layout (worker list) before the writers loop takes over
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        for _ in range(3):
            llama.chat(coordinator.port, "tell me something", max_tokens=8)
            time.sleep(1)
        for each in stacks.values():
            wait_for(lambda each=each: each.query("sollol_router_task_type_requests_total") and each.query("sollol_rpc_backend_device_memory_free_bytes"),
                     30, what="the exporter's data in Prometheus")
            wait_for(lambda each=each: all(each.query(rule) for rule in RECORDED), 30, what="the recording rules evaluated")
        time.sleep(16)  # enough samples for every rate window
        yield stacks
    finally:
        stop.set()
        for item in reversed(started):
            item.stop()


def all_queries():
    for stack in STACKS:
        for name, dashboard in dashboards(stack).items():
            for panel in dashboard["panels"]:
                if not panel.get("targets"):
                    yield pytest.param(stack, name, panel["title"], None, id=f"{stack}/{name}/{panel['title']}")
                for target in panel.get("targets", []):
                    yield pytest.param(stack, name, panel["title"], target["expr"], id=f"{stack}/{name}/{panel['title']}/{target['refId']}")


@pytest.mark.parametrize("stack, dashboard, title, expr", list(all_queries()))
def test_panel_query_returns_data(populated, stack, dashboard, title, expr):
    if expr is None:
        assert title in NO_QUERY, f"{dashboard}: panel {title!r} has no query and no reason to be empty"
        return
    result = populated[stack].query(substitute(expr, stack))
    assert result, f"{stack}: {dashboard}: {title}: no series for {expr}"


def all_annotations():
    for stack in STACKS:
        for name, dashboard in dashboards(stack).items():
            for annotation in dashboard.get("annotations", {}).get("list", []):
                if annotation.get("expr"):
                    yield pytest.param(stack, name, annotation["name"], annotation["expr"], id=f"{stack}/{name}/annotation/{annotation['name']}")


def annotations_over(prometheus, expr: str, stack: str, seconds: float = 120) -> list[dict]:
    """As Grafana runs an annotation query: over the time range, one point per step."""
    end = time.time()
    reply = requests.get(f"{prometheus.url}/api/v1/query_range", timeout=10,
                         params={"query": substitute(expr, stack), "start": end - seconds, "end": end, "step": "1s"}).json()
    assert reply["status"] == "success", reply
    return reply["data"]["result"]


@pytest.mark.parametrize("stack, dashboard, name, expr", list(all_annotations()))
def test_annotation_query_marks_the_events(populated, stack, dashboard, name, expr):
    series = {(s["metric"].get("coordinator"), s["metric"].get("event")): [t for t, _ in s["values"]]
              for s in annotations_over(populated[stack], expr, stack)}
    # starts and restarts keep coming: their counters increase, marked for as long as they do, beyond the window in
    # which the counter first appeared; the one model load only ever made its counter appear at 1, and is marked too
    assert {("main", "start"), ("main", "restart"), ("main", "model_load")} <= set(series), f"{dashboard}: {name}: {sorted(series)}"
    starts = series[("main", "start")]
    assert max(starts) - min(starts) > 15, f"{dashboard}: {name}: starts marked only when the counter appeared"


def test_the_lifecycle_annotation_is_on_the_coordinator_dashboards():
    with_annotation = {(stack, name) for stack, name, *_ in (p.values for p in all_annotations())}
    assert with_annotation == {(stack, name) for stack in STACKS for name in ("sollol-inference", "sollol-requests")}


@pytest.mark.parametrize("stack", STACKS)
def test_template_variables_find_values(populated, stack):
    for name, dashboard in dashboards(stack).items():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            selector, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]).groups()
            reply = requests.get(f"{populated[stack].url}/api/v1/label/{label}/values",
                                 params={"match[]": substitute(selector, stack)}, timeout=10).json()
            assert reply["status"] == "success" and reply["data"], f"{stack}: {name}: ${variable['name']} has no values"
            if variable["name"] == "cluster":
                assert reply["data"] == [STACKS[stack]], f"{stack}: {name}: $cluster lists {reply['data']}"


def test_control_the_shipped_dashboards_find_nothing_on_the_renamed_setup(populated):
    """The committed (default) dashboards' queries, run where the job and cluster label have other names, find nothing:
    the renamed run above passes because its dashboards follow the config, not by accident."""
    found = []
    for name, dashboard in dashboards("shipped").items():
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if populated["renamed"].query(substitute(target["expr"], "renamed")):
                    found.append(f"{name}/{panel['title']}/{target['refId']}")
    assert not found, found
