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


def test_a_label_named_like_the_exporters_own_is_kept_apart():
    samples = by_name(translate('llamacpp:requests_processing{coordinator="other",slot="1"} 3\n')[0])
    assert samples[("requests_processing", (("exported_coordinator", "other"), ("slot", "1")))].value == 3


def test_series_past_the_cap_are_dropped_and_counted_without_being_parsed():
    from sollol_exporter.sources.coordinator import MAX_SERIES

    body = "# TYPE llamacpp:many gauge\n" + "".join(f'llamacpp:many{{i="{i}"}} {i}\n' for i in range(MAX_SERIES + 250))
    samples, invalid, dropped = translate(body + "llamacpp:tokens_predicted_total 5\n")
    assert len(samples) == MAX_SERIES
    assert (invalid, dropped) == (0, 251)


def test_values_that_are_not_measurements_are_invalid():
    body = ("# TYPE llamacpp:tokens_predicted_total counter\nllamacpp:tokens_predicted_total -4\n"
            "llamacpp:requests_processing +Inf\nllamacpp:requests_deferred NaN\nllamacpp:kv_cache_tokens 1e300\n"
            "llamacpp:n_decode_total 12\n")
    samples, invalid, dropped = translate(body)
    assert [(s.name, s.value) for s in samples] == [("decode_calls_total", 12.0)]
    assert (invalid, dropped) == (4, 0)


def test_over_long_lines_are_invalid_and_the_rest_is_read():
    samples, invalid, _ = translate(f'llamacpp:requests_processing{{x="{"y" * 5000}"}} 1\nllamacpp:requests_deferred 2\n')
    assert [(s.name, s.value) for s in samples] == [("requests_deferred", 2.0)]
    assert invalid == 1


def test_long_names_and_label_values_stay_distinct_and_valid():
    long = "x" * 150
    samples = translate(f'llamacpp:{long}a 1\nllamacpp:{long}b 2\nllamacpp:c{{{long}a="{long}1",_9="z"}} 3\n'
                        f'llamacpp:c{{{long}a="{long}2",_9="z"}} 4\n')[0]
    assert len({s.name for s in samples}) == 3
    assert all(len(s.name) <= 100 for s in samples)
    labelled = [s for s in samples if s.name == "c"]
    assert len({tuple(s.labels.items()) for s in labelled}) == 2
    assert all(name[0].isalpha() or name[0] == "_" for s in labelled for name in s.labels)


def test_an_empty_label_is_no_label():
    samples, invalid, _ = translate('llamacpp:requests_processing{slot=""} 1\nllamacpp:requests_processing 2\n')
    assert [(s.labels, s.value) for s in samples] == [({}, 1.0)]
    assert invalid == 1  # the same series twice


def test_a_read_still_running_is_stalled_once_health_answered_and_hung_before():
    import threading
    import time

    from sollol_exporter.config import CoordinatorConfig
    from sollol_exporter.sources.coordinator import CoordinatorClient
    from tests.support.hostile import TrickleRoute, TrickleServer

    slow_metrics = TrickleServer({"/health": TrickleRoute(b"{}"), "/metrics": TrickleRoute(b"llamacpp:x 1\n", body_interval=0.5)})
    slow_health = TrickleServer({"/health": TrickleRoute(b"{}", head_interval=0.2)})
    try:
        for server, expected in ((slow_metrics, "stalled"), (slow_health, "hung")):
            client = CoordinatorClient(CoordinatorConfig(url=server.url, timeout=2.0, props_interval=3600.0))
            read = threading.Thread(target=client.read, args=(time.monotonic() + 2.0,))
            read.start()
            time.sleep(0.7)
            assert read.is_alive()
            assert client.unfinished(0.7).state == expected
            read.join(5)
    finally:
        slow_metrics.stop()
        slow_health.stop()


def test_metrics_and_props_end_before_the_scrapes_deadline():
    import time

    from sollol_exporter.config import CoordinatorConfig
    from sollol_exporter.sources.coordinator import FINISH_MARGIN, CoordinatorClient
    from tests.support.hostile import TrickleRoute, TrickleServer

    server = TrickleServer({"/health": TrickleRoute(b"{}"), "/metrics": TrickleRoute(b"llamacpp:x 1\n", body_interval=1.0)})
    try:
        client = CoordinatorClient(CoordinatorConfig(url=server.url, timeout=5.0, props_interval=3600.0))
        deadline = time.monotonic() + 1.0
        reading = client.read(deadline)
        assert time.monotonic() <= deadline - FINISH_MARGIN / 2
        assert reading.state == "stalled"
    finally:
        server.stop()
