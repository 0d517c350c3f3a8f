"""Durations in Prometheus' notation (the exporter config) and Go's (the web config)."""

import pytest

from sollol_exporter import config
from sollol_exporter.config.durations import GO, PROMETHEUS, DurationOutOfRange, parse_duration


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("1m30s", 90), ("1h30m", 5400), ("1d", 86400), ("1w", 604800), ("1y", 31536000), ("500ms", 0.5),
     ("2s500ms", 2.5), ("0", 0), ("1.5s", 1.5), ("2h", 7200), (3, 3), (0.25, 0.25)],
)
def test_prometheus_duration_forms_are_accepted(written, seconds, tmp_path):
    target = tmp_path / "c.yml"
    target.write_text(f"dashboard:\n  forget_after: {written}\nmetadata:\n  retention: {written}\n")
    loaded = config.load(str(target), env={})
    assert loaded.dashboard.forget_after == loaded.metadata.retention == pytest.approx(seconds)


@pytest.mark.parametrize("written", ["30s1m", "1h1h", "ms", "'1.5'", "-1", "'2'", "-1s", "1e3s", "300y", ".inf", ".nan", "true"])
def test_malformed_or_out_of_range_durations_are_refused(written, tmp_path):
    target = tmp_path / "c.yml"
    target.write_text(f"redis:\n  timeout: {written}\n")
    with pytest.raises(config.ConfigError, match=r"^c\.yml:2: redis\.timeout: (expected a duration|duration out of range)"):
        config.load(str(target), env={})


@pytest.mark.parametrize(("written", "seconds"), [
    ("1m30s", 90), ("30s1m", 90), ("250ms", 0.25), ("1.5h", 5400), (".5s", 0.5), ("1.s", 1), ("100us", 1e-4),
    ("100µs", 1e-4), ("10ns", 1e-8), (" 2s ", 2), ("0", 0), (0, 0),
])
def test_go_durations_read_as_time_parse_duration_does(written, seconds):
    assert parse_duration(written, GO) == pytest.approx(seconds)


@pytest.mark.parametrize("written", ["1d", "1w", "5", 5, 1.5, "0.0", "-1s", "+1s", "", "s", "1 s", True, None, [1]])
def test_what_go_would_not_read_is_not_a_go_duration(written):
    with pytest.raises(ValueError) as caught:
        parse_duration(written, GO)
    assert not isinstance(caught.value, DurationOutOfRange)


@pytest.mark.parametrize("notation", [PROMETHEUS, GO], ids=["prometheus", "go"])
def test_both_notations_stop_at_an_int64_of_nanoseconds(notation):
    assert parse_duration("2562047h", notation) == 2562047 * 3600
    with pytest.raises(DurationOutOfRange):
        parse_duration("2562048h", notation)
