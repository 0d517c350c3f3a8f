import json

import pytest

from sollol_exporter import metadata
from sollol_exporter.addresses import Address
from sollol_exporter.values import BadValue
from tests.fixtures.sollol import VARIANT_A, VARIANT_B, VARIANT_C, VARIANT_D, VARIANT_E, fresh


@pytest.mark.parametrize(
    "doc, ttl, variant",
    [
        (VARIANT_A, 30, metadata.OLLAMA_POOL),
        (VARIANT_B, 3600, metadata.RAY_HYBRID),
        (VARIANT_C, -1, metadata.COORDINATOR_MANAGER),
        (VARIANT_D, 30, metadata.SYNAPTIC_LLAMAS),
        (VARIANT_E, 30, metadata.OLLAMA_POOL_LEGACY),
        ({"something": "else"}, 10, metadata.UNKNOWN),
    ],
)
def test_each_writer_is_recognised(doc, ttl, variant):
    assert metadata.classify(json.loads(fresh(doc)), ttl) == variant


def test_variant_a_reduces_to_analytics_pool_and_nodes():
    reading = metadata.reduce(json.loads(fresh(VARIANT_A)), metadata.OLLAMA_POOL)
    assert reading.analytics["p95_latency_ms"] == 2310.0
    assert reading.pool["cache_misses"] == 247
    assert reading.nodes[0].address == Address("10.0.0.5", 11434)
    assert reading.nodes[0].values["available"] == 1.0
    assert reading.invalid_entries == 0


def test_string_ports_are_normalised():
    doc = {"nodes": [{"host": "10.0.0.7", "port": "11434"}], "rpc_backends": [{"host": "10.0.0.9", "port": "50053"}],
           "metrics": {"router_type": "ray_hybrid"}}
    reading = metadata.reduce(doc, metadata.RAY_HYBRID)
    assert reading.node_targets == [Address("10.0.0.7", 11434)]
    assert reading.rpc_backends == [Address("10.0.0.9", 50053)]


def test_last_good_rpc_backends_survive_synaptic_llamas_overwriting_the_key():
    store = metadata.MetadataStore(retention=3600, stats_max_age=60)
    store.update(fresh(VARIANT_B).encode(), 3600, now=1000.0)
    store.update(fresh(VARIANT_D).encode(), 30, now=1005.0)
    assert store.rpc_backends() == [Address("10.0.0.45", 50052), Address("10.0.0.48", 50052)]
    assert {r.variant for r in store.fresh(1010.0)} == {metadata.RAY_HYBRID, metadata.SYNAPTIC_LLAMAS}


def test_kept_readings_expire_after_retention_and_stats_after_their_max_age():
    store = metadata.MetadataStore(retention=100, stats_max_age=10)
    store.update(fresh(VARIANT_B).encode(), 3600, now=1000.0)
    assert store.fresh(1020.0) == []
    assert store.rpc_backends()
    store.update(fresh(VARIANT_D).encode(), 30, now=1101.0)
    assert store.rpc_backends() == []


def test_coordinator_manager_rewrite_of_another_value_is_kept_as_its_own():
    doc = json.loads(fresh(VARIANT_B))
    store = metadata.MetadataStore(3600, 60)
    current = store.update(json.dumps(doc).encode(), -1, now=1.0)
    assert current.variant == metadata.RAY_HYBRID
    assert store.readings[metadata.COORDINATOR_MANAGER].rpc_backends == [Address("10.0.0.45", 50052), Address("10.0.0.48", 50052)]


def test_age_comes_from_timestamp_then_ttl_then_first_sight():
    store = metadata.MetadataStore(3600, 60)
    doc = json.loads(fresh(VARIANT_A))
    doc["timestamp"] = 900.0
    assert store.update(json.dumps(doc).encode(), 25, now=1000.0).age == pytest.approx(100.0)
    assert store.update(fresh(VARIANT_B).encode(), 3000, now=1000.0).age == 600
    assert store.update(fresh(VARIANT_C).encode(), -1, now=1000.0).age == 0
    assert store.update(fresh(VARIANT_C).encode(), -1, now=1042.0).age == 42


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_unusable_values_raise_bad_value_and_keep_the_last_good_reading(raw):
    store = metadata.MetadataStore(3600, 60)
    store.update(fresh(VARIANT_B).encode(), 3600, now=1.0)
    with pytest.raises(BadValue):
        store.update(raw, 30, now=2.0)
    assert store.rpc_backends()


def test_wrong_field_types_are_counted_not_fatal():
    doc = json.loads(fresh(VARIANT_A))
    doc["metrics"]["analytics"]["p50_latency_ms"] = "fast"
    doc["nodes"].append({"host": "bad host!", "available": True})
    doc["nodes"].append("not a node")
    doc["nodes"][0]["total_requests"] = {"nested": 1}
    reading = metadata.reduce(doc, metadata.OLLAMA_POOL)
    assert reading.invalid_entries == 4
    assert "p50_latency_ms" not in reading.analytics
    assert len(reading.nodes) == 1


def _targets(count: int) -> dict:
    return {"nodes": [{"host": f"10.1.{i // 256}.{i % 256}", "port": 11434} for i in range(count)],
            "rpc_backends": [f"10.2.{i // 256}.{i % 256}:50052" for i in range(count)], "metrics": {}}


def test_each_list_of_targets_is_capped_and_the_rest_counted_as_dropped():
    reading = metadata.reduce(_targets(metadata.MAX_TARGETS + 7), metadata.COORDINATOR_MANAGER)
    assert len(reading.node_targets) == len(reading.rpc_backends) == metadata.MAX_TARGETS
    assert reading.dropped_entries == 14
    assert reading.invalid_entries == 0


def test_task_types_past_their_cap_are_dropped_and_counted():
    doc = json.loads(fresh(VARIANT_D))
    doc["metrics"]["synaptic_llamas"]["task_types"] = {f"type{i}": i for i in range(metadata.MAX_TASK_TYPES + 3)}
    reading = metadata.reduce(doc, metadata.SYNAPTIC_LLAMAS)
    assert len(reading.task_types) == metadata.MAX_TASK_TYPES
    assert reading.dropped_entries == 3


def test_a_deleted_ttl_less_value_is_forgotten_at_once():
    store = metadata.MetadataStore(retention=3600, stats_max_age=60)
    store.update(fresh(VARIANT_C).encode(), -1, now=1000.0)
    assert store.rpc_backends()
    store.update(None, -2, now=1010.0)
    assert store.rpc_backends() == []


def test_a_ttl_less_value_overwritten_by_another_writer_is_kept_after_that_one_expires():
    store = metadata.MetadataStore(retention=3600, stats_max_age=60)
    store.update(fresh(VARIANT_C).encode(), -1, now=1000.0)
    store.update(fresh(VARIANT_D).encode(), 30, now=1005.0)  # SynapticLlamas overwrites every 5 s...
    store.update(None, -2, now=1040.0)  # ...and its value expires once it stops: C's workers are not gone
    assert store.rpc_backends() == [Address("10.0.0.45", 50052), Address("10.0.0.48", 50052)]


def test_a_rayhybrid_value_that_expired_is_still_kept_for_retention():
    store = metadata.MetadataStore(retention=3600, stats_max_age=60)
    store.update(fresh(VARIANT_B).encode(), 3600, now=1000.0)
    store.update(None, -2, now=1010.0)
    assert store.rpc_backends()


@pytest.mark.parametrize("field, number", [("p95_latency_ms", 1e308), ("p95_latency_ms", -5), ("success_rate", 1.5),
                                           ("total_requests", -1), ("total_requests", 1e300), ("avg_duration_ms", "1e400")])
def test_numbers_outside_their_plausible_range_are_invalid(field, number):
    doc = json.loads(fresh(VARIANT_A))
    doc["metrics"]["analytics"][field] = number
    reading = metadata.reduce(doc, metadata.OLLAMA_POOL)
    assert field not in reading.analytics
    assert reading.invalid_entries == 1


def test_node_figures_outside_their_range_are_invalid():
    doc = json.loads(fresh(VARIANT_A))
    doc["nodes"][0].update(gpu_free_mem=1e308, latency_ms=-3, active_requests=2**60)
    reading = metadata.reduce(doc, metadata.OLLAMA_POOL)
    assert {"gpu_free_mem", "latency_ms", "active_requests"}.isdisjoint(reading.nodes[0].values)
    assert reading.nodes[0].values["priority"] == 999
    assert reading.invalid_entries == 3


def test_a_timestamp_from_the_future_is_invalid_and_not_used_for_the_age():
    store = metadata.MetadataStore(3600, 60)
    doc = json.loads(fresh(VARIANT_A))
    doc["timestamp"] = 1000.0 + 86400
    current = store.update(json.dumps(doc).encode(), 20, now=1000.0)
    assert current.age == 10  # from the writer's TTL (30 s, 20 left)
    assert current.reading.invalid_entries == 1
    doc["timestamp"] = 1000.0 + 60  # a clock a minute ahead is believed
    current = store.update(json.dumps(doc).encode(), 20, now=1000.0)
    assert current.age == 0 and current.reading.invalid_entries == 0
