import json

import pytest

from sollol_exporter import metadata
from sollol_exporter.labels import Address
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
