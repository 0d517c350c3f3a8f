import subprocess
import sys
import time

import pytest

from sollol_exporter.addresses import Address
from sollol_exporter.probes import NOT_SERVING, REFUSED, SERVING, Target, grpc_health
from tests.support.grpc_health_server import HealthServer
from tests.support.net import free_port


@pytest.fixture
def health_server():
    server = HealthServer()
    yield server
    server.stop()


def test_serving_and_not_serving_services(health_server):
    health_server.set("rpc-server:50052", True)
    health_server.set("rpc-server:50053", False)
    address = Address("127.0.0.1", health_server.port)
    worker = Address("127.0.0.1", 50052)
    targets = [Target(worker, address, "rpc-server:50052"), Target(worker, address, "rpc-server:50053"), Target(worker, address, "")]
    results = grpc_health.probe_all(targets, timeout=2, deadline=time.monotonic() + 3)
    assert [results[t].outcome for t in targets] == [SERVING, NOT_SERVING, SERVING]  # the reference servicer starts with "" SERVING


def test_unknown_service_is_not_serving(health_server):
    address = Address("127.0.0.1", health_server.port)
    result = grpc_health.probe_one(address, "rpc-server:1", 2)
    assert result.outcome == NOT_SERVING
    assert result.detail == "service unknown"


def test_nothing_listening_is_refused():
    address = Address("127.0.0.1", free_port())
    assert grpc_health.probe_one(address, "", 2).outcome == REFUSED


def test_grpc_is_loaded_by_the_first_grpc_probe_not_at_start():
    """grpc costs about 12 MB of memory: an exporter that never probes over gRPC must not load it."""
    port = free_port()
    script = f"""
import sys, time
import sollol_exporter.cli, sollol_exporter.state, sollol_exporter.collection
from sollol_exporter.addresses import Address
from sollol_exporter.probes import Target, dispatch
print("grpc" in sys.modules)
result = dispatch.PROBERS["grpc"]([Target(Address("127.0.0.1", {port}), None, "")], 2, time.monotonic() + 3)
print("grpc" in sys.modules, next(iter(result.values())).outcome)
"""
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True).stdout
    assert output.split() == ["False", "True", REFUSED]
