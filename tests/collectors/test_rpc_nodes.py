"""The rpc_nodes collector: the workers SOLLOL's setup scripts registered (`sollol:rpc:node:{ip}:{port}`)."""

from sollol_exporter.collectors.rpc_nodes import RpcNodesCollector
from sollol_exporter.snapshot import RedisStatus, Snapshot
from sollol_exporter.sources.redis_values import Registration
from tests.support.collect import rendered
from tests.support.exporter import series

GIB = 1 << 30


def snapshot(*registrations: Registration) -> Snapshot:
    return Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True), registrations=registrations)


def test_each_registration_is_rendered_per_backend():
    gpu = Registration("10.0.0.7:50052", has_gpu=1.0, gpu_memory=(("0", "RTX 4090", 19.2 * GIB), ("1", "RTX 3060", 9.6 * GIB)),
                       cpu_memory=25.6 * GIB, parallel_workers=4.0)
    cpu = Registration("10.0.0.8:50052", has_gpu=0.0, gpu_memory=(), cpu_memory=12.8 * GIB, parallel_workers=None)
    samples = rendered(RpcNodesCollector(), snapshot(gpu, cpu))
    first, second = ("backend", "10.0.0.7:50052"), ("backend", "10.0.0.8:50052")
    assert series(samples, "sollol_rpc_node_registered") == {(first,): 1.0, (second,): 1.0}
    assert series(samples, "sollol_rpc_node_has_gpu") == {(first,): 1.0, (second,): 0.0}
    assert series(samples, "sollol_rpc_node_gpu_memory_bytes") == {(first, ("gpu", "0"), ("name", "RTX 4090")): 19.2 * GIB,
                                                                   (first, ("gpu", "1"), ("name", "RTX 3060")): 9.6 * GIB}
    assert series(samples, "sollol_rpc_node_cpu_memory_bytes") == {(first,): 25.6 * GIB, (second,): 12.8 * GIB}
    assert series(samples, "sollol_rpc_node_parallel_workers") == {(first,): 4.0}  # not said: left out


def test_a_registration_that_says_nothing_else_is_still_registered():
    samples = rendered(RpcNodesCollector(), snapshot(Registration("10.0.0.9:50052", None, (), None, None)))
    assert samples == {("sollol_rpc_node_registered", (("backend", "10.0.0.9:50052"),)): 1.0}


def test_two_keys_for_one_backend_render_it_once_from_the_first():
    samples = rendered(RpcNodesCollector(), snapshot(Registration("10.0.0.7:50052", 1.0, (), None, 8.0),
                                                     Registration("10.0.0.7:50052", 0.0, (), None, 2.0)))
    assert series(samples, "sollol_rpc_node_parallel_workers") == {(("backend", "10.0.0.7:50052"),): 8.0}
    assert series(samples, "sollol_rpc_node_has_gpu") == {(("backend", "10.0.0.7:50052"),): 1.0}


def test_no_registrations_render_no_series():
    assert rendered(RpcNodesCollector(), snapshot()) == {}
