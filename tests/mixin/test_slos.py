"""The SLOs of the mixin: Sloth's names and labels, thresholds that are bucket bounds, the workbook's windows, and
the optional fixed-threshold request alerts they replace."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mixin.config import HISTOGRAM_BUCKETS, SLOS, Config, Slo
from mixin.rules import ALERTS_FILE, RECORDING_FILE, render
from mixin.slos import SLIS, le_matcher, sli_windows

ROOT = Path(__file__).resolve().parent.parent.parent
PROM = ROOT / "prometheus"
SLOTH_RECORDS = {f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")} | {
    "slo:objective:ratio", "slo:error_budget:ratio", "slo:time_period:days", "slo:current_burn_rate:ratio",
    "slo:period_burn_rate:ratio", "slo:period_error_budget_remaining:ratio", "sloth_slo_info"}


def rules(config: Config, name: str) -> list[dict]:
    return [rule for group in yaml.safe_load(render(config)[name])["groups"] for rule in group["rules"]]


def test_the_histogram_buckets_are_the_exporter_s():
    from sollol_exporter.events.counts import BUCKETS

    assert HISTOGRAM_BUCKETS == BUCKETS


def test_every_slo_has_its_sli_and_sloth_s_records_with_sloth_s_labels():
    assert set(SLOS) == set(SLIS) == {"node-availability", "model-latency", "coordinator-availability", "coordinator-latency",
                                      "application-availability"}
    recorded = [rule for rule in rules(Config(), RECORDING_FILE) if rule["record"].startswith(("slo:", "sloth_"))]
    assert {rule["record"] for rule in recorded} == SLOTH_RECORDS
    for slo in SLOS:
        mine = [rule for rule in recorded if rule["labels"]["sloth_slo"] == slo]
        assert {rule["record"] for rule in mine} == SLOTH_RECORDS, slo
        for rule in mine:
            assert rule["labels"]["sloth_id"] == f"sollol-{slo}" and rule["labels"]["sloth_service"] == "sollol"
            window = rule["record"].rpartition("ratio_rate")[2] if "sli_error" in rule["record"] else None
            assert rule["labels"].get("sloth_window") == window


def test_the_sli_keeps_the_label_it_is_about_and_the_cluster_and_instance():
    for rule in rules(Config(cluster_label="site"), RECORDING_FILE):
        if rule["record"] == "slo:sli_error:ratio_rate5m":
            labels = SLIS[rule["labels"]["sloth_slo"]].labels
            assert f"sum by (site, instance, {', '.join(labels)})" in rule["expr"], rule["expr"]


def test_the_windows_are_the_workbook_s_and_the_slo_window_is_read_less_often():
    assert sli_windows(Config()) == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    groups = {group["name"]: group for group in yaml.safe_load(render(Config())[RECORDING_FILE])["groups"]}
    assert groups["sollol.slo.window"]["interval"] == "2m"
    assert {rule["record"] for rule in groups["sollol.slo.window"]["rules"]} == {"slo:sli_error:ratio_rate30d"}
    assert "interval" not in groups["sollol.slo.sli"]
    custom = Config(slo_window="28d")
    records = {rule["record"] for rule in rules(custom, RECORDING_FILE)}
    assert "slo:sli_error:ratio_rate28d" in records and "slo:sli_error:ratio_rate30d" not in records
    assert any(rule["expr"] == "vector(28)" for rule in rules(custom, RECORDING_FILE) if rule["record"] == "slo:time_period:days")


@pytest.mark.parametrize("threshold, forms", [(30.0, ["30", "30.0"]), (2.5, ["2.5"]), (0.025, ["0.025"]), (300.0, ["300", "300.0"])])
def test_a_latency_threshold_matches_the_bound_as_prometheus_2_and_3_write_it(threshold, forms):
    matcher = le_matcher(threshold)
    pattern = re.fullmatch(r'le=~"(.*)"', matcher).group(1).replace("\\\\", "\\")
    for form in forms:
        assert re.fullmatch(pattern, form), (matcher, form)
    for wrong in ("3", "300" if threshold == 30.0 else "31", "30x0", "2x5"):
        if wrong not in forms:
            assert not re.fullmatch(pattern, wrong), (matcher, wrong)


@pytest.mark.parametrize("change, message", [
    ({"slos": {"model-latency": Slo(0.99, "why", threshold=45.0)}}, "not a bucket bound"),
    ({"slos": {"node-availability": Slo(0.9, "why")}}, "14.4x burn"),
    ({"slos": {"node-availability": Slo(1.0, "why")}}, "between 0 and 1"),
    ({"slos": {"Node": Slo(0.99, "why")}}, "Sloth SLO name"),
    ({"slo_window": "4w"}, "number of days"),
    ({"slo_window": "3d"}, "at least 7"),
])
def test_an_slo_that_cannot_work_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        Config(**change)


def test_an_slo_without_an_sli_is_refused_by_name():
    with pytest.raises(ValueError, match="no SLI is defined for 'gpu-availability'"):
        render(Config(slos={**SLOS, "gpu-availability": Slo(0.99, "why")}))


def test_every_slo_has_a_page_and_a_ticket_alert_with_the_workbook_s_windows_and_factors():
    alerts = {rule["alert"]: rule for rule in rules(Config(), ALERTS_FILE)}
    for slo in SLOS:
        stem = "Sollol" + "".join(part.capitalize() for part in slo.split("-"))
        page, ticket = alerts[stem + "FastBurn"], alerts[stem + "SlowBurn"]
        assert (page["labels"]["severity"], page["labels"]["sloth_severity"], page["for"]) == ("critical", "page", "2m")
        assert (ticket["labels"]["severity"], ticket["labels"]["sloth_severity"], ticket["for"]) == ("warning", "ticket", "15m")
        budget = f"{1 - SLOS[slo].objective:.10g}"
        for rule, pairs in ((page, (("5m", "1h", "14.4"), ("30m", "6h", "6"))), (ticket, (("2h", "1d", "3"), ("6h", "3d", "1")))):
            assert rule["labels"]["sloth_slo"] == slo
            for short, long, factor in pairs:
                for window in (short, long):
                    assert f'slo:sli_error:ratio_rate{window}{{sloth_id="sollol-{slo}"' in rule["expr"]
                    selector = f'sloth_id="sollol-{slo}",sloth_service="sollol",sloth_slo="{slo}"'
                    assert f"ratio_rate{window}{{{selector}}} > ({factor} * {budget})" in rule["expr"]
                # the low-traffic guard: the short window's request rate
                assert re.search(rf"\[{short}\]\)\) >= 0\.05", rule["expr"]), rule["expr"]
            assert "{{" not in rule["annotations"]["summary"]


def test_the_low_traffic_guard_is_the_configured_minimum_request_rate():
    text = render(Config(min_request_rate=0.5))[ALERTS_FILE]
    assert text.count(")) >= 0.5\n") == 2 * 2 * len(SLOS)


def test_the_fixed_request_alerts_are_a_switch():
    names = {rule["alert"] for rule in rules(Config(), ALERTS_FILE)}
    assert not names & {"SollolNodeErrorRatioHigh", "SollolModelLatencyHigh"}
    names = {rule["alert"] for rule in rules(Config(fixed_request_alerts=True), ALERTS_FILE)}
    assert {"SollolNodeErrorRatioHigh", "SollolModelLatencyHigh"} <= names


def test_the_cli_sets_the_slo_window_and_the_fixed_alerts(tmp_path):
    from mixin import generate

    assert generate.main(["--set", "slo_window=28d", "--set", "fixed_request_alerts=true", "--out", str(tmp_path)]) == 0
    text = (tmp_path / ALERTS_FILE).read_text() + (tmp_path / RECORDING_FILE).read_text()
    assert "slo:sli_error:ratio_rate28d" in text and "- alert: SollolNodeErrorRatioHigh" in text
    for bad in ("fixed_request_alerts=yes", "slo_window=2d"):
        with pytest.raises(SystemExit):
            generate.main(["--set", bad, "--out", str(tmp_path)])


def _optional_tree(tmp_path: Path, config: Config) -> list[str]:
    (tmp_path / "rules").mkdir()
    for name, text in render(config).items():
        (tmp_path / "rules" / name).write_text(text)
    target = tmp_path / "tests" / "optional"
    target.mkdir(parents=True)
    tests = []
    for source in sorted((PROM / "tests" / "optional").glob("*.yml")):
        (target / source.name).write_text(source.read_text())
        tests.append(str(target / source.name))
    assert tests
    return tests


def test_the_optional_alerts_pass_their_unit_tests_when_switched_on(tmp_path):
    tests = _optional_tree(tmp_path, Config(fixed_request_alerts=True))
    result = subprocess.run([shutil.which("promtool"), "test", "rules", *tests], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_control_the_optional_alerts_are_not_in_the_default_rules(tmp_path):
    tests = _optional_tree(tmp_path, Config())
    result = subprocess.run([shutil.which("promtool"), "test", "rules", *tests], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "SollolNodeErrorRatioHigh" in result.stdout + result.stderr
