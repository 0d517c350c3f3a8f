"""The metadata collector: which SOLLOL writer wrote `sollol:router:metadata`, how old it is, and the router
statistics it carries."""

from sollol_exporter.collectors.metadata import MetadataCollector
from sollol_exporter.metadata import COORDINATOR_MANAGER, OLLAMA_POOL, RAY_HYBRID, SYNAPTIC_LLAMAS, Current, Reading
from sollol_exporter.snapshot import RedisStatus, Snapshot, frozen
from tests.support.collect import rendered
from tests.support.exporter import series, value

POOL = Reading(OLLAMA_POOL, source="pool-1", router_type="OllamaPool", seen_at=1_700_000_100.0,
               analytics={"p50_latency_ms": 250.0, "p95_latency_ms": 900.0, "p99_latency_ms": 1500.0, "total_requests": 40.0,
                          "successful_requests": 38.0, "success_rate": 0.95, "avg_duration_ms": 300.0},
               pool={"nodes_configured": 2.0, "cache_hits": 10.0, "cache_misses": 30.0, "cache_evictions": 1.0, "cache_size": 9.0,
                     "cache_max_size": 100.0})


def snapshot(current: Current | None, *fresh: Reading, readings: dict | None = None) -> Snapshot:
    return Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True), metadata=current, fresh_readings=fresh,
                    metadata_readings=frozen(readings or {}))


def test_the_writer_its_age_and_the_key_s_ttl():
    current = Current(True, ttl=25, variant=OLLAMA_POOL, age=5.0, reading=POOL)
    samples = rendered(MetadataCollector(), snapshot(current, readings={OLLAMA_POOL: POOL}))
    assert value(samples, "sollol_metadata_present") == 1.0
    assert series(samples, "sollol_metadata_info") == {(("router_type", "OllamaPool"), ("source", "pool-1"), ("variant", OLLAMA_POOL)): 1.0}
    assert value(samples, "sollol_metadata_age_seconds") == 5.0
    assert value(samples, "sollol_metadata_ttl_seconds") == 25.0
    assert series(samples, "sollol_metadata_variant_last_seen_timestamp_seconds") == {(("variant", OLLAMA_POOL),): 1_700_000_100.0}


def test_a_key_without_ttl_or_known_age_renders_neither():
    current = Current(True, ttl=-1, variant=COORDINATOR_MANAGER, age=None, reading=Reading(COORDINATOR_MANAGER))
    samples = rendered(MetadataCollector(), snapshot(current))
    assert series(samples, "sollol_metadata_info") == {(("router_type", ""), ("source", ""), ("variant", COORDINATOR_MANAGER)): 1.0}
    assert value(samples, "sollol_metadata_age_seconds") is None and value(samples, "sollol_metadata_ttl_seconds") is None


def test_a_missing_key_is_present_0_and_keeps_when_each_writer_was_last_seen():
    ray = Reading(RAY_HYBRID, seen_at=1_700_000_000.0)
    samples = rendered(MetadataCollector(), snapshot(Current(False), readings={RAY_HYBRID: ray}))
    assert samples == {("sollol_metadata_present", ()): 0.0,
                       ("sollol_metadata_variant_last_seen_timestamp_seconds", (("variant", RAY_HYBRID),)): 1_700_000_000.0}


def test_router_statistics_are_rendered_in_seconds_per_source():
    samples = rendered(MetadataCollector(), snapshot(Current(True, variant=OLLAMA_POOL, reading=POOL), POOL))
    source = ("source", "pool-1")
    assert series(samples, "sollol_router_latency_seconds") == {(("quantile", "0.5"), source): 0.25, (("quantile", "0.95"), source): 0.9,
                                                                (("quantile", "0.99"), source): 1.5}
    assert series(samples, "sollol_router_latency_seconds_count") == {(source,): 40.0}
    assert series(samples, "sollol_router_latency_seconds_sum") == {(source,): 12.0}  # 40 requests of 300 ms on average
    assert series(samples, "sollol_router_success_ratio") == {(source,): 0.95}
    assert series(samples, "sollol_router_requests_total") == {(source,): 40.0}
    assert series(samples, "sollol_router_successful_requests_total") == {(source,): 38.0}
    assert series(samples, "sollol_router_average_duration_seconds") == {(source,): 0.3}
    assert series(samples, "sollol_pool_nodes_configured") == {(source,): 2.0}
    assert series(samples, "sollol_pool_cache_hits_total") == {(source,): 10.0}
    assert series(samples, "sollol_pool_cache_misses_total") == {(source,): 30.0}
    assert series(samples, "sollol_pool_cache_evictions_total") == {(source,): 1.0}
    assert series(samples, "sollol_pool_cache_entries") == {(source,): 9.0}
    assert series(samples, "sollol_pool_cache_capacity_entries") == {(source,): 100.0}


def test_two_readings_from_one_source_render_the_first():
    later = Reading(OLLAMA_POOL, source="pool-1", analytics={"total_requests": 1.0})
    samples = rendered(MetadataCollector(), snapshot(Current(True, variant=OLLAMA_POOL, reading=POOL), POOL, later))
    assert series(samples, "sollol_router_requests_total") == {(("source", "pool-1"),): 40.0}


def test_synaptic_llamas_and_ray_statistics_carry_no_source():
    synaptic = Reading(SYNAPTIC_LLAMAS, synaptic={"total_nodes": 3.0, "healthy_nodes": 2.0, "gpu_nodes": 1.0, "routing_decisions": 17.0,
                                                  "avg_routing_time_ms": 4.0},
                       task_types={"generation": 12.0, "embedding": 5.0})
    ray = Reading(RAY_HYBRID, ray={"num_pools": 2.0, "total_backends": 4.0})
    samples = rendered(MetadataCollector(), snapshot(Current(True, variant=SYNAPTIC_LLAMAS, reading=synaptic), synaptic, ray))
    assert series(samples, "sollol_router_nodes") == {(("kind", "total"),): 3.0, (("kind", "healthy"),): 2.0, (("kind", "gpu"),): 1.0}
    assert value(samples, "sollol_router_routing_decisions_total") == 17.0
    assert value(samples, "sollol_router_average_routing_time_seconds") == 0.004
    assert series(samples, "sollol_router_task_type_requests_total") == {(("task_type", "embedding"),): 5.0, (("task_type", "generation"),): 12.0}
    assert value(samples, "sollol_ray_router_pools") == 2.0 and value(samples, "sollol_ray_router_backends") == 4.0
    assert series(samples, "sollol_router_requests_total") == {}  # neither carries request analytics


def test_no_metadata_reading_renders_nothing():
    assert list(MetadataCollector().collect(snapshot(None))) == []
