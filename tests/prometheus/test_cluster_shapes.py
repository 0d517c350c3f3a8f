"""Every cluster shape a new user runs, end to end: the real SOLLOL (its own environment) in front of Ollama
stand-ins and/or real llama.cpp binaries, the exporter started as a new user starts it (no config file, its
defaults plus SOLLOL_* variables), and a real Prometheus evaluating the shipped rules. A healthy cluster raises no
alert, not even a pending one; each real fault of that shape raises its own.

The coordinator and dashboard variables point at free loopback ports where nothing listens: the same as the
defaults on a machine without llama.cpp or a dashboard service, without depending on what holds 18080 or 8080 here.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.fixtures.sollol import RPC_NODE
from tests.support.exporter import ExporterProcess
from tests.support.net import free_port, wait_for
from tests.support.prometheus_stack import Prometheus
from tests.support.redis_server import RedisServer
from tests.support.replay import ReplayServer, ollama_routes
from tests.support.sollol_package import RunningCluster

LOOP = "127.0.0.1"
NOT_ALERTS = 'alertname!="SollolWatchdog"'


class Stack:
    """What one test started, stopped in reverse order."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.started = []

    def add(self, thing):
        self.started.append(thing)
        return thing

    def exporter(self, redis_url: str, coordinator_port: int | None = None) -> ExporterProcess:
        env = {"SOLLOL_REDIS_URL": redis_url, "SOLLOL_DASHBOARD_PORT": str(free_port())}
        if coordinator_port is None:
            env["SOLLOL_COORDINATOR_PORT"] = str(free_port())
        else:
            env.update(SOLLOL_COORDINATOR_HOST=LOOP, SOLLOL_COORDINATOR_PORT=str(coordinator_port))
        return self.add(ExporterProcess(None, self.tmp_path, env=env))

    def prometheus(self, exporter: ExporterProcess) -> Prometheus:
        prometheus = self.add(Prometheus(self.tmp_path, f"{LOOP}:{exporter.port}", f"{LOOP}:{free_port()}",
                                         scrape_interval="2s", for_duration="2s"))
        wait_for(lambda: prometheus.query('up{job="sollol"} == 1'), 30, what="first scrape")
        return prometheus

    def stop(self):
        for thing in reversed(self.started):
            thing.stop()


@pytest.fixture
def stack(tmp_path):
    made = Stack(tmp_path)
    yield made
    made.stop()


def no_alert_since(prometheus: Prometheus, since: float) -> None:
    """No alert, pending or firing, was evaluated since `since` (time.time())."""
    window = max(1, int(time.time() - since))
    seen = prometheus.query(f"count_over_time(ALERTS{{{NOT_ALERTS}}}[{window}s])")
    assert seen == [], sorted({(s["metric"]["alertname"], s["metric"].get("alertstate")) for s in seen})


def healthy_for(prometheus: Prometheus, seconds: float) -> None:
    start = time.time()
    time.sleep(seconds)
    no_alert_since(prometheus, start)


def fires(prometheus: Prometheus, alertname: str, timeout: float = 60, **labels) -> dict:
    matchers = ",".join([f'alertname="{alertname}"', 'alertstate="firing"', *(f'{k}="{v}"' for k, v in labels.items())])
    wait_for(lambda: prometheus.query(f"ALERTS{{{matchers}}}"), timeout, what=f"{alertname} firing")
    return prometheus.query(f"ALERTS{{{matchers}}}")[0]["metric"]


def ollama_nodes(stack: Stack, count: int) -> list[ReplayServer]:
    return [stack.add(ReplayServer(ollama_routes())) for _ in range(count)]


def test_nothing_running_yet_then_an_ollama_only_sollol_then_its_faults(stack, tmp_path):
    """The exporter starts before anything else: quiet. Then Redis and an OllamaPool over two nodes (no llama.cpp,
    no dashboard): quiet. Then a node dies, the other dies, and Redis dies: each raises its alert."""
    redis_port = free_port()
    exporter = stack.exporter(f"redis://{LOOP}:{redis_port}/0")
    prometheus = stack.prometheus(exporter)
    healthy_for(prometheus, 4)

    redis = stack.add(RedisServer(tmp_path, port=redis_port))
    nodes = ollama_nodes(stack, 2)
    stack.add(RunningCluster({"redis_port": redis_port, "nodes": [n.port for n in nodes]}, redis.url, log_dir=tmp_path))
    for node in nodes:
        wait_for(lambda node=node: prometheus.query(f'sollol_ollama_node_up{{node="{node.address}"}} == 1'), 60, what=f"{node.address} found")
    wait_for(lambda: prometheus.query('sum(sollol_requests_total{outcome="success"}) > 0'), 30, what="requests counted")
    settled = time.time()
    healthy_for(prometheus, 5)
    assert prometheus.query("sollol_coordinator_up") == [] and prometheus.query("sollol_dashboard_up") == []
    assert prometheus.query("sollol_redis_up == 1")

    first, second = nodes
    first.stop()
    assert fires(prometheus, "SollolOllamaNodeDown", node=first.address)["severity"] == "warning"
    second.stop()
    fires(prometheus, "SollolOllamaNodesAllDown")
    # nodes going down is not a coordinator or an exporter problem
    since = int(time.time() - settled) + 1
    unrelated = prometheus.query(f'count_over_time(ALERTS{{alertname=~"SollolCoordinator.*|SollolExporterCollectorFailing"}}[{since}s])')
    assert unrelated == [], [u["metric"] for u in unrelated]
    redis.stop()
    fires(prometheus, "SollolRedisDown")


@pytest.mark.llama
def test_a_llama_cpp_only_sollol_and_its_faults(stack, tmp_path, redis_db, tiny_model):
    """LlamaCppCoordinator (real SOLLOL) starts llama-server over two real rpc-server workers that are registered in
    Redis as SOLLOL's node scripts register them; no Ollama. Quiet when healthy; then the coordinator dies, a worker
    dies, Redis dies."""
    from tests.support import llama

    workers = [stack.add(llama.start_rpc_server(log_dir=tmp_path)) for _ in range(2)]
    for worker in workers:
        redis_db.client.set(f"sollol:rpc:node:{LOOP}:{worker.port}", json.dumps(RPC_NODE), ex=3600)
    port = free_port()
    exporter = stack.exporter(redis_db.url, coordinator_port=port)
    prometheus = stack.prometheus(exporter)
    cluster = stack.add(RunningCluster({"redis_port": redis_db.port,
                                        "coordinator": {"model": str(tiny_model), "workers": [w.port for w in workers], "port": port}},
                                       redis_db.url, extra_path=str(llama.bin_dir()), env={"LLAMA_ARG_ENDPOINT_METRICS": "1"}, log_dir=tmp_path))
    wait_for(lambda: prometheus.query('sollol_coordinator_state{state="ok"} == 1'), 60, what="coordinator ok")
    wait_for(lambda: len(prometheus.query("sollol_rpc_backend_up == 1")) == 2, 30, what="workers up")
    # SOLLOL does not pass --metrics; LLAMA_ARG_ENDPOINT_METRICS in its environment reaches llama-server
    wait_for(lambda: prometheus.query("sollol_coordinator_tokens_predicted_total > 0"), 30, what="token counters")
    healthy_for(prometheus, 5)
    assert prometheus.query("sollol_ollama_node_up") == [] and prometheus.query("sollol_dashboard_up") == []

    name = f"{LOOP}:{port}"
    import os

    os.kill(cluster.llama_server_pid, signal.SIGKILL)
    assert fires(prometheus, "SollolCoordinatorDown", coordinator=name)["severity"] == "critical"
    victim = workers[1]
    victim.stop(signal.SIGKILL)
    fires(prometheus, "SollolRpcBackendDown", backend=f"{LOOP}:{victim.port}")
    redis_db.stop()
    try:
        fires(prometheus, "SollolRedisDown")
    finally:
        redis_db.start()


@pytest.mark.llama
def test_ollama_and_llama_cpp_together_and_their_faults(stack, tmp_path, redis_db, tiny_model):
    """An OllamaPool over two nodes and a LlamaCppCoordinator over two workers in one SOLLOL: quiet when healthy;
    a node dies, then a worker dies, each raising its alert."""
    from tests.support import llama

    workers = [stack.add(llama.start_rpc_server(log_dir=tmp_path)) for _ in range(2)]
    for worker in workers:
        redis_db.client.set(f"sollol:rpc:node:{LOOP}:{worker.port}", json.dumps(RPC_NODE), ex=3600)
    nodes = ollama_nodes(stack, 2)
    port = free_port()
    exporter = stack.exporter(redis_db.url, coordinator_port=port)
    prometheus = stack.prometheus(exporter)
    stack.add(RunningCluster({"redis_port": redis_db.port, "nodes": [n.port for n in nodes],
                              "coordinator": {"model": str(tiny_model), "workers": [w.port for w in workers], "port": port}},
                             redis_db.url, extra_path=str(llama.bin_dir()), env={"LLAMA_ARG_ENDPOINT_METRICS": "1"}, log_dir=tmp_path))
    wait_for(lambda: prometheus.query('sollol_coordinator_state{state="ok"} == 1'), 60, what="coordinator ok")
    wait_for(lambda: len(prometheus.query("sollol_ollama_node_up == 1")) == 2, 60, what="nodes found")
    wait_for(lambda: len(prometheus.query("sollol_rpc_backend_up == 1")) == 2, 30, what="workers up")
    healthy_for(prometheus, 5)

    nodes[0].stop()
    fires(prometheus, "SollolOllamaNodeDown", node=nodes[0].address)
    victim = workers[0]
    victim.stop(signal.SIGKILL)
    fires(prometheus, "SollolRpcBackendDown", backend=f"{LOOP}:{victim.port}")
