"""The GPU collector: what each node's gpu_reporter last wrote to `sollol:gpu:{node}`."""

from sollol_exporter.collectors.gpu import GpuCollector
from sollol_exporter.snapshot import RedisStatus, Snapshot
from sollol_exporter.sources.redis_values import Gpu, GpuReport
from tests.support.collect import rendered
from tests.support.exporter import series

GIB = 1 << 30


def snapshot(*reports: GpuReport) -> Snapshot:
    return Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True), gpu=reports)


def test_each_gpu_of_each_node_is_rendered_in_base_units():
    report = GpuReport("10.0.0.5:11434", "nvidia", (
        Gpu("0", "RTX 4090", {"memory_total": 24 * GIB, "memory_free": 20 * GIB, "memory_used": 4 * GIB, "utilization": 0.35, "temperature": 61.0}),
        Gpu("1", "RTX 3060", {"memory_total": 12 * GIB}),
    ), timestamp=1_700_000_000.0)
    samples = rendered(GpuCollector(), snapshot(report))
    node = ("node", "10.0.0.5:11434")
    assert series(samples, "sollol_gpu_memory_total_bytes") == {(("gpu", "0"), node): 24 * GIB, (("gpu", "1"), node): 12 * GIB}
    assert series(samples, "sollol_gpu_memory_free_bytes") == {(("gpu", "0"), node): 20 * GIB}  # what a GPU does not report is left out
    assert series(samples, "sollol_gpu_memory_used_bytes") == {(("gpu", "0"), node): 4 * GIB}
    assert series(samples, "sollol_gpu_utilization_ratio") == {(("gpu", "0"), node): 0.35}
    assert series(samples, "sollol_gpu_temperature_celsius") == {(("gpu", "0"), node): 61.0}
    assert series(samples, "sollol_gpu_info") == {(("gpu", "0"), ("name", "RTX 4090"), node, ("vendor", "nvidia")): 1.0,
                                                  (("gpu", "1"), ("name", "RTX 3060"), node, ("vendor", "nvidia")): 1.0}
    assert series(samples, "sollol_gpu_devices") == {(node,): 2.0}
    assert series(samples, "sollol_gpu_cpu_only") == {(node,): 0.0}
    assert series(samples, "sollol_gpu_report_timestamp_seconds") == {(node,): 1_700_000_000.0}


def test_a_node_on_the_cpu_has_no_gpu_and_says_so():
    samples = rendered(GpuCollector(), snapshot(GpuReport("10.0.0.6:11434", "none", (), timestamp=None)))
    node = (("node", "10.0.0.6:11434"),)
    assert samples == {("sollol_gpu_devices", node): 0.0, ("sollol_gpu_cpu_only", node): 1.0}  # no timestamp written: none shown


def test_two_entries_claiming_one_index_keep_the_first():
    report = GpuReport("n:11434", "amd", (Gpu("0", "first", {"memory_total": 8 * GIB}), Gpu("0", "second", {"memory_total": 16 * GIB})), None)
    samples = rendered(GpuCollector(), snapshot(report))
    assert series(samples, "sollol_gpu_memory_total_bytes") == {(("gpu", "0"), ("node", "n:11434")): 8 * GIB}
    assert [dict(labels)["name"] for labels in series(samples, "sollol_gpu_info")] == ["first"]


def test_no_reports_render_no_series():
    assert rendered(GpuCollector(), snapshot()) == {}
