"""The Ollama collector: the exporter's own probe of each node beside SOLLOL's view of the same node."""

from sollol_exporter.addresses import Address
from sollol_exporter.collectors.ollama import OllamaCollector
from sollol_exporter.metadata import OLLAMA_POOL, RAY_HYBRID, NodeStats
from sollol_exporter.metadata import Reading as MetadataReading
from sollol_exporter.snapshot import RedisStatus, Snapshot, frozen
from sollol_exporter.sources.ollama import Model, Reading
from tests.support.collect import rendered
from tests.support.exporter import series

GIB = 1 << 30
NODE = Address("10.0.0.5", 11434)
DOWN = Address("10.0.0.6", 11434)


def snapshot(nodes: dict, sources: dict | None = None, *fresh: MetadataReading) -> Snapshot:
    return Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True), ollama=frozen(nodes), ollama_sources=frozen(sources or {}),
                    fresh_readings=fresh)


def test_a_node_that_answers_shows_its_loaded_models_in_bytes():
    reading = Reading(up=True, duration=0.012, version="0.33.0", models=[
        Model("llama3.2:3b", 3 * GIB, 2 * GIB, expires_in=240.0, context_length=4096.0),
        Model("nomic-embed-text", GIB, 0.0, expires_in=None, context_length=None),
    ])
    samples = rendered(OllamaCollector(max_models=10), snapshot({NODE: reading}, {NODE: frozenset({"metadata", "config"})}))
    node = ("node", "10.0.0.5:11434")
    assert series(samples, "sollol_ollama_node_up") == {(node,): 1.0}
    assert series(samples, "sollol_ollama_node_probe_duration_seconds") == {(node,): 0.012}
    assert series(samples, "sollol_ollama_node_info") == {(node, ("source", "config,metadata"), ("version", "0.33.0")): 1.0}
    assert series(samples, "sollol_ollama_node_loaded_models") == {(node,): 2.0}
    assert series(samples, "sollol_ollama_model_memory_bytes") == {(("model", "llama3.2:3b"), node): 3 * GIB,
                                                                   (("model", "nomic-embed-text"), node): GIB}
    assert series(samples, "sollol_ollama_model_vram_bytes") == {(("model", "llama3.2:3b"), node): 2 * GIB,
                                                                 (("model", "nomic-embed-text"), node): 0.0}
    assert series(samples, "sollol_ollama_model_expiry_seconds") == {(("model", "llama3.2:3b"), node): 240.0}  # no expiry said: none shown


def test_models_past_the_cap_are_summed_as_other_and_the_largest_keep_their_names():
    models = [Model(f"m{size}", size * GIB, size * GIB, expires_in=60.0, context_length=None) for size in (1, 5, 3, 2)]
    samples = rendered(OllamaCollector(max_models=2), snapshot({NODE: Reading(up=True, duration=0.01, models=models)}))
    node = ("node", "10.0.0.5:11434")
    assert series(samples, "sollol_ollama_model_memory_bytes") == {(("model", "m5"), node): 5 * GIB, (("model", "m3"), node): 3 * GIB,
                                                                   (("model", "other"), node): 3 * GIB}
    assert series(samples, "sollol_ollama_node_loaded_models") == {(node,): 4.0}
    assert (("model", "other"), node) not in series(samples, "sollol_ollama_model_expiry_seconds")


def test_a_node_that_does_not_answer_is_down_with_no_model_series():
    samples = rendered(OllamaCollector(max_models=10), snapshot({DOWN: Reading(up=False, duration=1.0, detail="refused")}))
    node = (("node", "10.0.0.6:11434"),)
    assert samples == {("sollol_ollama_node_up", node): 0.0, ("sollol_ollama_node_probe_duration_seconds", node): 1.0,
                       ("sollol_ollama_node_info", (("node", "10.0.0.6:11434"), ("source", ""), ("version", ""))): 1.0}


def test_sollol_s_view_of_each_node_comes_from_ollama_pool_s_metadata_in_base_units():
    stats = NodeStats(NODE, {"available": 1.0, "total_requests": 40.0, "failed_requests": 2.0, "active_requests": 1.0, "success_rate": 0.95,
                             "latency_ms": 250.0, "gpu_free_mem": 8192.0, "priority": 1.0})
    again = NodeStats(NODE, {"total_requests": 1.0})
    pool = MetadataReading(OLLAMA_POOL, nodes=[stats, again])
    samples = rendered(OllamaCollector(max_models=10), snapshot({}, None, pool))
    node = (("node", "10.0.0.5:11434"),)
    assert samples == {
        ("sollol_ollama_node_available", node): 1.0,
        ("sollol_ollama_node_requests_total", node): 40.0,  # the node's first entry: a repeat is not added
        ("sollol_ollama_node_failed_requests_total", node): 2.0,
        ("sollol_ollama_node_active_requests", node): 1.0,
        ("sollol_ollama_node_success_ratio", node): 0.95,
        ("sollol_ollama_node_reported_latency_seconds", node): 0.25,
        ("sollol_ollama_node_reported_gpu_free_bytes", node): 8 * GIB,  # SOLLOL writes MiB
        ("sollol_ollama_node_priority", node): 1.0,
    }


def test_only_ollama_pool_s_metadata_speaks_for_the_nodes():
    ray = MetadataReading(RAY_HYBRID, nodes=[NodeStats(NODE, {"total_requests": 40.0})])
    assert rendered(OllamaCollector(max_models=10), snapshot({}, None, ray)) == {}
