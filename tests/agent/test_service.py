"""The node agent (`sollol-exporter agent`) beside real rpc-server workers, read through real gRPC clients."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sollol_exporter.scrape import Scraper
from tests.support import llama
from tests.support.collect import base_config, collect, make_config
from tests.support.exporter import one_hot, value
from tests.support.net import free_port, stop_process, wait_for

pytestmark = pytest.mark.llama
LOOP = "127.0.0.1"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class AgentProcess:
    def __init__(self, ports, tmp_path):
        self.port = free_port()
        self.log = open(tmp_path / f"agent-{self.port}.log", "wb")
        args = [sys.executable, "-m", "sollol_exporter", "agent", "--web.listen-address", f"{LOOP}:{self.port}", "--check.interval", "0.2"]
        for port in ports:
            args += ["--rpc.port", str(port)]
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.channel = grpc.insecure_channel(f"{LOOP}:{self.port}")
        self.stub = health_pb2_grpc.HealthStub(self.channel)
        grpc.channel_ready_future(self.channel).result(timeout=20)

    def check(self, service):
        return self.stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status

    def stop(self):
        self.channel.close()
        stop_process(self.process)
        self.log.close()


@pytest.fixture
def worker(tmp_path):
    proc = llama.start_rpc_server(log_dir=tmp_path)
    yield proc
    proc.stop()


def test_serving_while_the_worker_runs_and_not_serving_once_it_dies(tmp_path, worker):
    other = free_port()
    agent = AgentProcess([worker.port, other], tmp_path)
    try:
        assert agent.check(f"rpc-server:{worker.port}") == SERVING
        assert agent.check(f"rpc-server:{other}") == NOT_SERVING
        assert agent.check("") == NOT_SERVING  # not every worker is up
        seen = []
        stream = agent.stub.Watch(health_pb2.HealthCheckRequest(service=f"rpc-server:{worker.port}"), timeout=10)

        def read():
            try:
                for reply in stream:
                    seen.append(reply.status)
            except grpc.RpcError:  # cancelled at the end of the test
                pass

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        wait_for(lambda: seen == [SERVING], 5, what="first Watch message")
        time.sleep(1.0)  # five checks of an unchanged worker: nothing more is streamed
        assert seen == [SERVING]
        worker.stop(signal.SIGKILL)
        wait_for(lambda: NOT_SERVING in seen, 2, what="Watch reporting the dead worker")
        assert seen == [SERVING, NOT_SERVING]
        assert agent.check(f"rpc-server:{worker.port}") == NOT_SERVING
        stream.cancel()
        reader.join(5)
    finally:
        agent.stop()


def test_a_port_taken_by_another_program_is_not_serving(tmp_path):
    listener = socket.socket()
    listener.bind((LOOP, 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    agent = AgentProcess([port], tmp_path)
    try:
        assert agent.check(f"rpc-server:{port}") == NOT_SERVING
        assert agent.check("") == NOT_SERVING
    finally:
        agent.stop()
        listener.close()


def test_the_agent_never_connects_to_the_worker(tmp_path, worker):
    agent = AgentProcess([worker.port], tmp_path)
    try:
        for _ in range(5):
            assert agent.check(f"rpc-server:{worker.port}") == SERVING
    finally:
        agent.stop()
    assert "Accepted client connection" not in worker.read_log()


def test_exporter_grpc_probe_through_the_agent_reports_a_busy_worker_as_up(tmp_path, redis_db, workers, tiny_model):
    coordinator = llama.start_llama_server(tiny_model, rpc=[(LOOP, w.port) for w in workers], log_dir=tmp_path)
    agent = AgentProcess([w.port for w in workers], tmp_path)
    static = [{"address": f"{LOOP}:{w.port}", "probe": "grpc", "grpc": {"port": agent.port}} for w in workers]
    config = base_config(redis_db.url, rpc_backends={"static": static, "discover": False, "timeout": "500ms"}, ollama={"discover": False})
    scraper = Scraper(make_config(tmp_path, config))
    try:
        for _ in range(5):
            s = collect(scraper)
            for w in workers:
                assert one_hot(s, "sollol_rpc_backend_state", backend=f"{LOOP}:{w.port}") == "serving"
                assert value(s, "sollol_rpc_backend_up", backend=f"{LOOP}:{w.port}") == 1
        assert llama.chat(coordinator.port, "hi", max_tokens=2)["choices"]
        assert all(w.alive() for w in workers)
    finally:
        scraper.close()
        agent.stop()
        coordinator.stop()
