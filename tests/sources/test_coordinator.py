from sollol_exporter.sources.coordinator import translate
from tests.fixtures.llamacpp_metrics import B4748, CURRENT


def by_name(samples):
    return {(s.name, tuple(sorted(s.labels.items()))): s for s in samples}


def test_old_build_series_are_renamed_without_colons():
    samples = by_name(translate(B4748)[0])
    assert samples[("prompt_tokens_total", ())].value == 54
    assert samples[("tokens_predicted_total", ())].kind == "counter"
    assert samples[("decode_calls_total", ())].value == 8
    assert samples[("kv_cache_usage_ratio", ())].value == 0.238281
    assert samples[("busy_slots_per_decode", ())].kind == "gauge"  # a counter on the TYPE line, an average in truth
    assert all(":" not in s.name for s in samples.values())


def test_throughput_gauges_that_reset_per_read_are_dropped():
    names = {s.name for s in translate(B4748)[0]}
    assert not {"prompt_tokens_seconds", "predicted_tokens_seconds"} & names


def test_current_build_series_and_labels():
    samples = by_name(translate(CURRENT)[0])
    assert samples[("prompt_tokens_total", ())].value == 12345700.0
    assert samples[("prompt_tokens_cached_total", ())].value == 400
    assert samples[("max_sequence_tokens", ())].kind == "gauge"
    assert samples[("speculative_accepted_tokens_by_position_total", (("position", "1"),))].value == 7


def test_unknown_counters_keep_their_name_with_a_total_suffix():
    samples = by_name(translate(CURRENT)[0])
    assert samples[("future_series_seconds_total", ())].kind == "counter"
