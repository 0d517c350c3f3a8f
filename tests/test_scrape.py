"""A whole collection against a real redis-server, the Ollama and dashboard stand-ins and loopback listeners."""

import json
import socket
import time

import pytest

from tests.fixtures.sollol import GPU, RPC_NODE, VARIANT_A, VARIANT_B, VARIANT_C, VARIANT_D, fresh, routing_event
from tests.support.collect import base_config, collect
from tests.support.exporter import one_hot, series, value
from tests.support.net import close_listener, free_port, full_listener
from tests.support.replay import ReplayServer, Route, ollama_routes


def test_metadata_variants_are_told_apart_and_exported(redis_db, scraper_for):
    scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False}, rpc_backends={"discover": False}))
    redis_db.client.set("sollol:router:metadata", fresh(VARIANT_A), ex=30)
    s = collect(scraper)
    assert value(s, "sollol_metadata_present") == 1
    assert value(s, "sollol_metadata_info", variant="ollama_pool", source="synapticllamas_(ollama_pool)", router_type="") == 1
    assert value(s, "sollol_router_latency_seconds", source="synapticllamas_(ollama_pool)", quantile="0.95") == pytest.approx(2.31)
    assert value(s, "sollol_router_requests_total", source="synapticllamas_(ollama_pool)") == 250
    assert value(s, "sollol_ollama_node_available", node="10.0.0.5:11434") == 1
    assert value(s, "sollol_ollama_node_requests_total", node="10.0.0.5:11434") == 130
    assert value(s, "sollol_metadata_age_seconds") < 5

    redis_db.client.set("sollol:router:metadata", fresh(VARIANT_D), ex=30)
    s = collect(scraper)
    assert value(s, "sollol_metadata_info", variant="synaptic_llamas", source="synaptic_llamas", router_type="") == 1
    assert value(s, "sollol_router_task_type_requests_total", task_type="generation") == 31
    assert value(s, "sollol_router_nodes", kind="healthy") == 2
    # A's statistics are kept: its writer alternates with D's every few seconds
    assert value(s, "sollol_router_requests_total", source="synapticllamas_(ollama_pool)") == 250

    redis_db.client.set("sollol:router:metadata", json.dumps(VARIANT_C))
    s = collect(scraper)
    assert value(s, "sollol_metadata_info", variant="coordinator_manager", source="", router_type="") == 1
    assert value(s, "sollol_metadata_ttl_seconds") is None


def test_rpc_backends_from_every_source_are_probed_and_kept(redis_db, scraper_for):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    alive = listener.getsockname()[1]
    dead = free_port()
    registered = free_port()
    redis_db.client.set("sollol:router:metadata", json.dumps({**VARIANT_B, "rpc_backends": [{"host": "127.0.0.1", "port": str(alive)}]}), ex=3600)
    redis_db.client.set(f"sollol:rpc:node:127.0.0.1:{registered}", json.dumps(RPC_NODE), ex=3600)
    scraper = scraper_for(base_config(redis_db.url, rpc_backends={"static": [{"address": f"127.0.0.1:{dead}"}]}, ollama={"discover": False}))
    try:
        s = collect(scraper)
        assert one_hot(s, "sollol_rpc_backend_state", backend=f"127.0.0.1:{alive}") == "reachable"
        assert one_hot(s, "sollol_rpc_backend_state", backend=f"127.0.0.1:{dead}") == "refused"
        assert one_hot(s, "sollol_rpc_backend_state", backend=f"127.0.0.1:{registered}") == "refused"
        assert value(s, "sollol_rpc_backend_up", backend=f"127.0.0.1:{alive}") == 1
        assert value(s, "sollol_rpc_backend_up", backend=f"127.0.0.1:{dead}") == 0
        assert value(s, "sollol_rpc_backend_info", backend=f"127.0.0.1:{alive}", probe="tcp", source="metadata") == 1
        assert value(s, "sollol_rpc_backend_info", backend=f"127.0.0.1:{registered}", probe="tcp", source="registry") == 1
        assert value(s, "sollol_rpc_node_gpu_memory_bytes", backend=f"127.0.0.1:{registered}", gpu="0", name="RTX 3090") == 19660 * 1048576
        # SynapticLlamas overwrites the key: the worker list written once by RayHybridRouter is still probed
        redis_db.client.set("sollol:router:metadata", fresh(VARIANT_D), ex=30)
        s = collect(scraper)
        assert one_hot(s, "sollol_rpc_backend_state", backend=f"127.0.0.1:{alive}") == "reachable"
    finally:
        listener.close()


def test_a_worker_that_times_out_is_busy_only_while_its_coordinator_is_up(redis_db, scraper_for, tmp_path):
    listener, port = full_listener()
    coordinator = ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route("", status=501)})
    try:
        config = base_config(
            redis_db.url,
            coordinators=[{"url": coordinator.url, "name": "main", "rpc_backends": [f"127.0.0.1:{port}"]}],
            ollama={"discover": False},
        )
        scraper = scraper_for(config)
        s = collect(scraper)
        assert one_hot(s, "sollol_coordinator_state", coordinator="main") == "ok"
        assert one_hot(s, "sollol_rpc_backend_state", backend=f"127.0.0.1:{port}") == "busy"
        assert value(s, "sollol_rpc_backend_up", backend=f"127.0.0.1:{port}") == 1
        assert value(s, "sollol_coordinator_metrics_enabled", coordinator="main") == 0
        coordinator.stop()
        s = collect(scraper)
        assert one_hot(s, "sollol_coordinator_state", coordinator="main") == "unreachable"
        assert one_hot(s, "sollol_rpc_backend_state", backend=f"127.0.0.1:{port}") == "unreachable"
        assert value(s, "sollol_rpc_backend_up", backend=f"127.0.0.1:{port}") == 0
    finally:
        close_listener(listener)


def test_grpc_probe_through_a_health_service(redis_db, scraper_for):
    from tests.support.grpc_health_server import HealthServer

    health = HealthServer()
    health.set("rpc-server:50052", True)
    health.set("rpc-server:50053", False)
    try:
        static = [
            {"address": "127.0.0.1:50052", "probe": "grpc", "grpc": {"port": health.port}},
            {"address": "127.0.0.1:50053", "probe": "grpc", "grpc": {"port": health.port}},
        ]
        scraper = scraper_for(base_config(redis_db.url, rpc_backends={"static": static, "discover": False}, ollama={"discover": False}))
        s = collect(scraper)
        assert one_hot(s, "sollol_rpc_backend_state", backend="127.0.0.1:50052") == "serving"
        assert one_hot(s, "sollol_rpc_backend_state", backend="127.0.0.1:50053") == "not_serving"
        assert value(s, "sollol_rpc_backend_info", backend="127.0.0.1:50052", probe="grpc", source="config") == 1
    finally:
        health.stop()


def test_ollama_nodes_probe_and_model_cap(redis_db, scraper_for):
    models = [{"name": f"model-{i}", "size": 1000 + i, "size_vram": i, "expires_at": "2099-01-01T00:00:00Z"} for i in range(5)]
    node = ReplayServer(ollama_routes(models=models))
    dead = free_port()
    doc = json.loads(fresh(VARIANT_A))
    doc["nodes"] = [{"host": node.address, "available": True, "total_requests": 3}, {"host": "127.0.0.1", "port": str(dead)}]
    redis_db.client.set("sollol:router:metadata", json.dumps(doc), ex=30)
    try:
        scraper = scraper_for(base_config(redis_db.url, ollama={"max_models": 2}, rpc_backends={"discover": False}))
        s = collect(scraper)
        assert value(s, "sollol_ollama_node_up", node=node.address) == 1
        assert value(s, "sollol_ollama_node_up", node=f"127.0.0.1:{dead}") == 0
        assert value(s, "sollol_ollama_node_loaded_models", node=node.address) == 5
        assert value(s, "sollol_ollama_node_info", node=node.address, version="0.33.0-rc2", source="metadata") == 1
        models_seen = {dict(labels)["model"] for labels in series(s, "sollol_ollama_model_memory_bytes")}
        assert models_seen == {"model-4", "model-3", "other"}
        assert value(s, "sollol_ollama_model_memory_bytes", node=node.address, model="other") == 1000 * 3 + 0 + 1 + 2
        expiry = value(s, "sollol_ollama_model_expiry_seconds", node=node.address, model="model-4")
        assert expiry == 365 * 86400.0
        assert "/api/tags" not in node.paths()
    finally:
        node.stop()


def test_gpu_keys_and_the_stats_stream(redis_db, scraper_for):
    gpu = dict(GPU, timestamp=time.time())
    redis_db.client.set("sollol:gpu:10.0.0.5:11434", json.dumps(gpu), ex=120)
    redis_db.client.set("sollol:gpu:10.0.0.6:11434", json.dumps({"vendor": "none", "gpus": [], "timestamp": time.time(),
                                                                  "note": "GPU present but Ollama using CPU-only"}), ex=120)
    redis_db.client.xadd("sollol:gpu:stats", {"vendor": "nvidia", "gpus": "[]", "timestamp": "1", "node_id": "x"})
    scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False}))
    s = collect(scraper)
    assert value(s, "sollol_gpu_memory_total_bytes", node="10.0.0.5:11434", gpu="0") == 24576 * 1048576
    assert value(s, "sollol_gpu_utilization_ratio", node="10.0.0.5:11434", gpu="0") == pytest.approx(0.37)
    assert value(s, "sollol_gpu_cpu_only", node="10.0.0.6:11434") == 1
    assert value(s, "sollol_exporter_collector_success", collector="gpu") == 1
    assert not [labels for labels in series(s, "sollol_gpu_devices") if dict(labels)["node"] == "stats"]


def test_routing_stream_is_counted_once_from_the_start_position(redis_db, scraper_for):
    stream = "sollol:routing_stream"
    redis_db.client.xadd(stream, {"event": json.dumps(routing_event())})
    scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False}))
    s = collect(scraper)
    assert series(s, "sollol_routing_events_total") == {}  # history before start-up is not counted
    for _ in range(3):
        redis_db.client.xadd(stream, {"event": json.dumps(routing_event())})
    redis_db.client.xadd(stream, {"event": json.dumps(routing_event("COORDINATOR_START"))})
    redis_db.client.xadd(stream, {"event": "{broken"})
    s = collect(scraper)
    assert value(s, "sollol_routing_events_total", event_type="OLLAMA_NODE_SELECTED") == 3
    assert value(s, "sollol_routing_events_total", event_type="COORDINATOR_START") == 1
    assert value(s, "sollol_routing_node_selections_total", node="10.0.0.5:11434") == 3
    assert value(s, "sollol_routing_invalid_events_total") == 1
    s = collect(scraper)
    assert value(s, "sollol_routing_events_total", event_type="OLLAMA_NODE_SELECTED") == 3


def test_applications_from_the_dashboard_and_their_disappearance(redis_db, scraper_for, dashboard):
    scraper = scraper_for(base_config(redis_db.url, dashboard={"enabled": True, "url": dashboard.url}, ollama={"discover": False}))
    s = collect(scraper)
    labels = {"app": "SynapticLlamas (gpu-box)", "router_type": "IntelligentRouter"}
    assert value(s, "sollol_application_up", **labels) == 1
    assert value(s, "sollol_application_uptime_seconds", **labels) == 44010
    assert value(s, "sollol_dashboard_info", kind="dashboard_service") == 1
    dashboard.routes["/api/applications"] = Route({"applications": [], "total": 0})
    s = collect(scraper)
    assert value(s, "sollol_application_up", **labels) == 0
    assert dashboard.paths() == ["/api/applications", "/api/applications"]


@pytest.mark.parametrize(
    "key, raw, collector",
    [
        ("sollol:router:metadata", b"{not json", "metadata"),
        ("sollol:router:metadata", b"[]", "metadata"),
        ("sollol:gpu:10.0.0.5:11434", b"\xff\xfe garbage", "gpu"),
        ("sollol:gpu:10.0.0.5:11434", b'{"gpus": "not a list", "vendor": 7}', None),
        ("sollol:rpc:node:10.0.0.9:50052", b"null", "rpc_nodes"),
        ("sollol:router:metadata", json.dumps({"source": "x", "nodes": [{"host": "\n<script>alert(1)</script>:1"}] * 3}).encode(), None),
    ],
)
def test_bad_values_fail_their_collector_only(redis_db, scraper_for, key, raw, collector):
    redis_db.client.set(key, raw)
    scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False}))
    s = collect(scraper)
    failed = {dict(labels)["collector"] for labels, v in series(s, "sollol_exporter_collector_success").items() if v == 0}
    assert failed == ({collector} if collector else set())
    assert value(s, "sollol_redis_up") == 1


def test_wrongtype_and_oversized_keys(redis_db, scraper_for):
    redis_db.client.hset("sollol:router:metadata", "a", "b")
    redis_db.client.set("sollol:gpu:10.0.0.5:11434", b"x" * 2_000_000)
    redis_db.client.set("sollol:routing_stream", "not a stream")
    scraper = scraper_for(base_config(redis_db.url, ollama={"discover": False}))
    s = collect(scraper)
    failed = {dict(labels)["collector"] for labels, v in series(s, "sollol_exporter_collector_success").items() if v == 0}
    assert failed == {"metadata", "gpu", "routing"}
    assert value(s, "sollol_metadata_info", variant="invalid", source="", router_type="") == 1


def test_unreachable_redis_is_a_metric_not_a_crash(scraper_for):
    scraper = scraper_for(base_config(f"redis://127.0.0.1:{free_port()}/0", ollama={"discover": False}))
    s = collect(scraper)
    assert value(s, "sollol_redis_up") == 0
    for name in ("redis", "metadata", "gpu", "rpc_nodes", "routing"):
        assert value(s, "sollol_exporter_collector_success", collector=name) == 0
    assert value(s, "sollol_exporter_collector_success", collector="ollama") == 1


def test_a_collector_that_raises_costs_its_own_families_only(scraper_for):
    from sollol_exporter.collectors.names import CollectorName

    class Broken:
        name = CollectorName.COORDINATOR

        def collect(self, snapshot):
            raise RuntimeError("broken on purpose")

    scraper = scraper_for(base_config(f"redis://127.0.0.1:{free_port()}/0", ollama={"discover": False}))
    scraper.collectors = [Broken() if c.name == CollectorName.COORDINATOR else c for c in scraper.collectors]
    s = collect(scraper)
    assert value(s, "sollol_exporter_collector_success", collector="coordinator") == 0
    assert value(s, "sollol_exporter_collector_success", collector="ollama") == 1
    assert value(s, "sollol_redis_up") == 0  # the others still render


def test_hung_targets_are_reported_down_within_the_budget(redis_db, scraper_for):
    hung_coordinator = ReplayServer({"/health": Route({"status": "ok"}, delay=5)})
    hung_ollama = ReplayServer({"/": Route("Ollama is running", delay=5)})
    try:
        config = base_config(
            redis_db.url,
            coordinators=[{"url": hung_coordinator.url, "name": "slow", "timeout": "10s"}],
            ollama={"nodes": [hung_ollama.address], "timeout": "10s"},
        )
        scraper = scraper_for(config)
        started = time.monotonic()
        s = collect(scraper, budget=1.0)
        assert time.monotonic() - started < 1.6
        assert one_hot(s, "sollol_coordinator_state", coordinator="slow") == "hung"
        assert value(s, "sollol_ollama_node_up", node=hung_ollama.address) == 0
    finally:
        hung_coordinator.stop()
        hung_ollama.stop()


def test_concurrent_scrapes_share_one_collection(redis_db, scraper_for):
    from concurrent.futures import ThreadPoolExecutor

    coordinator = ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route("llamacpp:requests_processing 0\n", delay=0.5)})
    try:
        scraper = scraper_for(base_config(redis_db.url, coordinators=[{"url": coordinator.url}], ollama={"discover": False}))
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: collect(scraper), range(4)))
        assert coordinator.paths().count("/metrics") == 1
        assert all(value(r, "sollol_coordinator_requests_processing", coordinator=coordinator.address) == 0 for r in results)
    finally:
        coordinator.stop()
