import json
import time

from sollol_exporter.sources.redis_reader import Value
from sollol_exporter.sources.redis_values import MIB, gpu_reports, registrations
from tests.fixtures.sollol import GPU, RPC_NODE

NOW = 1_800_000_000.0


def gpu_value(**changes) -> Value:
    doc = json.loads(json.dumps(GPU))
    doc["timestamp"] = NOW
    gpu = doc["gpus"][0]
    for name, number in changes.items():
        (doc if name == "timestamp" else gpu)[name] = number
    return Value(raw=json.dumps(doc).encode())


def test_a_sollol_gpu_report_is_read_whole():
    report = gpu_reports({"10.0.0.5:11434": gpu_value()}, now=NOW).items[0]
    assert report.timestamp == NOW
    assert report.gpus[0].values == {"memory_total": 24576 * MIB, "memory_free": 18012 * MIB, "memory_used": 6564 * MIB,
                                     "utilization": 0.37, "temperature": 61.0}


def test_numbers_no_gpu_could_report_are_invalid_not_infinite():
    parsed = gpu_reports({"n:1": gpu_value(memory_total_mb=1e308, memory_free_mb=-1e308, utilization_percent=250,
                                           temperature_c=-1e6)}, now=NOW)
    assert parsed.items[0].gpus[0].values == {"memory_used": 6564 * MIB}
    assert parsed.invalid == 4


def test_a_report_timestamp_from_the_future_is_invalid():
    parsed = gpu_reports({"n:1": gpu_value(timestamp=1e308), "n:2": gpu_value(timestamp=NOW + 3600), "n:3": gpu_value(timestamp=NOW + 60)},
                         now=NOW)
    assert [r.timestamp for r in parsed.items] == [None, None, NOW + 60]  # a clock a minute ahead is believed
    assert parsed.invalid == 2


def test_two_keys_that_make_one_node_label_keep_the_first():
    parsed = gpu_reports({"10.0.0.5:11434": gpu_value(), "10.0.0.5:11434\x00": gpu_value()}, now=NOW)
    assert [r.node for r in parsed.items] == ["10.0.0.5:11434"]
    assert parsed.invalid == 1


def test_two_gpus_of_one_report_claiming_one_index_keep_the_first_and_count_the_other():
    doc = json.loads(gpu_value().raw)
    doc["gpus"].append({**doc["gpus"][0], "name": "Another GPU", "memory_total_mb": 8192})
    parsed = gpu_reports({"n:1": Value(raw=json.dumps(doc).encode())}, now=NOW)
    gpus = parsed.items[0].gpus
    assert [(g.index, g.name) for g in gpus] == [("0", GPU["gpus"][0]["name"])]
    assert gpus[0].values["memory_total"] == 24576 * MIB
    assert parsed.invalid == 1


def test_long_node_ids_sharing_their_beginning_stay_two_nodes():
    shared = "gpu-box-" + "a" * 130
    parsed = gpu_reports({shared + "1:11434": gpu_value(), shared + "2:11434": gpu_value()}, now=NOW)
    nodes = [r.node for r in parsed.items]
    assert len(set(nodes)) == 2 and all(len(n) <= 128 for n in nodes)


def test_keys_left_when_the_cpu_budget_is_spent_are_dropped():
    values = {f"10.0.0.{i}:11434": gpu_value() for i in range(5)}
    assert gpu_reports(values, now=NOW, cpu_seconds=0.0).dropped == 5
    assert registrations({"10.0.0.45:50052": Value(raw=json.dumps(RPC_NODE).encode())}, cpu_seconds=0.0).dropped == 1


def test_keys_not_read_in_time_are_dropped_and_fail_the_collector():
    late = Value(error="not read within the scrape budget", dropped=True, late=True)
    parsed = gpu_reports({"10.0.0.5:11434": gpu_value(), "10.0.0.6:11434": late}, now=NOW)
    assert (len(parsed.items), parsed.dropped, parsed.invalid) == (1, 1, 0)
    assert parsed.errors == ["not read within the scrape budget"]
    capped = gpu_reports({"10.0.0.6:11434": Value(error="left out: the read's byte budget is spent", dropped=True)}, now=NOW)
    assert capped.dropped == 1 and capped.errors == []  # a cap is counted, not a failure


def test_registration_numbers_outside_their_range_are_invalid():
    doc = {**RPC_NODE, "cpu_ram_mb": 1e308, "gpu_vram_mb": [-5, 19660], "total_parallel_workers": "1e300"}
    parsed = registrations({"10.0.0.45:50052": Value(raw=json.dumps(doc).encode())})
    registration = parsed.items[0]
    assert registration.cpu_memory is None and registration.parallel_workers is None
    assert registration.gpu_memory == (("1", "unknown", 19660 * MIB),)
    assert parsed.invalid == 3


def test_the_clock_is_this_hosts_by_default():
    value = Value(raw=json.dumps({**GPU, "timestamp": time.time()}).encode())
    assert gpu_reports({"n:1": value}).items[0].timestamp is not None


def test_gpus_in_all_reports_are_capped_and_the_rest_counted():
    from sollol_exporter.sources.redis_reader import Value
    from sollol_exporter.sources.redis_values import MAX_DEVICES, MAX_TOTAL_DEVICES, gpu_reports

    gpu = {"index": 0, "memory_total_mb": 24576, "memory_free_mb": 1000, "memory_used_mb": 23576, "utilization_percent": 5, "temperature_c": 40}
    report = {"vendor": "nvidia", "timestamp": 1_700_000_000.0, "gpus": [dict(gpu, index=i) for i in range(MAX_DEVICES)]}
    keys = MAX_TOTAL_DEVICES // MAX_DEVICES + 5
    parsed = gpu_reports({f"n{i:04d}:11434": Value(raw=json.dumps(report).encode()) for i in range(keys)}, now=1_700_000_001.0)
    assert sum(len(item.gpus) for item in parsed.items) == MAX_TOTAL_DEVICES
    assert parsed.dropped == keys * MAX_DEVICES - MAX_TOTAL_DEVICES
