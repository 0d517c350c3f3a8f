"""The coordinator collector renders each coordinator's /metrics under its own `coordinator` label."""

from sollol_exporter.collectors.coordinator import CoordinatorCollector
from sollol_exporter.snapshot import RedisStatus, Snapshot, frozen
from sollol_exporter.sources.coordinator import Reading, translate
from tests.support.collect import rendered
from tests.support.exporter import series


def render(bodies: dict[str, str]) -> dict:
    readings = {}
    for name, body in bodies.items():
        samples, invalid, dropped = translate(body)
        readings[name] = Reading("ok", 0.01, metrics_up=1.0, samples=samples, invalid_entries=invalid, dropped_entries=dropped)
    return rendered(CoordinatorCollector(), Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True), coordinators=frozen(readings)))


def test_a_coordinator_with_other_label_names_keeps_no_one_elses_series_out():
    samples = render({"a-spoof": 'llamacpp:requests_processing{coordinator="plain",slot="0"} 99\n',
                   "plain": "llamacpp:requests_processing 1\n"})
    found = {tuple((k, v) for k, v in labels if v): count for labels, count in series(samples, "sollol_coordinator_requests_processing").items()}
    assert found == {(("coordinator", "plain"),): 1,
                     (("coordinator", "a-spoof"), ("exported_coordinator", "plain"), ("slot", "0")): 99}


def test_each_coordinator_keeps_its_own_series():
    samples = render({"one": "llamacpp:tokens_predicted_total 5\n", "two": "llamacpp:tokens_predicted_total 7\n"})
    assert series(samples, "sollol_coordinator_tokens_predicted_total") == {(("coordinator", "one"),): 5, (("coordinator", "two"),): 7}


def test_a_peer_series_named_like_the_exporter_s_own_is_not_passed_through():
    from sollol_exporter.collectors.coordinator import reserved

    for forged in ("sollol_coordinator_up", "sollol_coordinator_state", "sollol_coordinator_metrics_up", "sollol_coordinator_slots",
                   "sollol_coordinator_request_duration_seconds_bucket", "sollol_coordinator_request_duration_seconds_count",
                   "sollol_coordinator_requests_total", "sollol_coordinator_requests", "sollol_coordinator_build_info"):
        assert reserved(forged), forged
    for genuine in ("sollol_coordinator_prompt_tokens_total", "sollol_coordinator_requests_processing", "sollol_coordinator_kv_cache_usage_ratio"):
        assert not reserved(genuine), genuine
