"""The shipped Prometheus and Alertmanager configuration, checked by the real promtool and amtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mixin.config import Config
from mixin.rules import ALERTS_FILE, render

ROOT = Path(__file__).resolve().parent.parent.parent
PROM = ROOT / "prometheus"
ALERTMANAGER_CONFIG = PROM / "alertmanager" / "alertmanager.yml"


def run(*args):
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def alert_rules():
    doc = yaml.safe_load((PROM / "rules" / "sollol-alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def recording_rules():
    doc = yaml.safe_load((PROM / "rules" / "sollol-recording.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def every_alert_rule():
    """The shipped alerts and the optional ones (Config.fixed_request_alerts), in rule-file order: each has a
    runbook and a row in the README."""
    doc = yaml.safe_load(render(Config(fixed_request_alerts=True))[ALERTS_FILE])
    return [rule for group in doc["groups"] for rule in group["rules"]]


def unit_tests(path: Path = PROM / "tests") -> list[dict]:
    return [case for each in sorted(path.glob("*.yml")) for case in yaml.safe_load(each.read_text())["tests"]]


def test_promtool_checks_config_and_rules():
    run("promtool", "check", "config", str(PROM / "prometheus.yml"))
    run("promtool", "check", "rules", *map(str, sorted((PROM / "rules").glob("*.yml"))))


def test_promtool_rule_unit_tests_pass():
    output = run("promtool", "test", "rules", *map(str, sorted((PROM / "tests").glob("*.yml"))))
    assert "FAILED" not in output


def test_amtool_accepts_the_alertmanager_config():
    run("amtool", "check-config", str(ALERTMANAGER_CONFIG))


@pytest.mark.parametrize(
    "labels, receiver",
    [
        (["alertname=SollolWatchdog", "severity=info"], "watchdog"),
        (["alertname=SollolRpcBackendDown", "severity=critical", "cluster=c1"], "critical"),
        (["alertname=SollolOllamaNodeDown", "severity=warning"], "default"),
        (["alertname=SollolCoordinatorMetricsDisabled", "severity=info"], "info"),
        (["alertname=SomethingElse"], "default"),
    ],
)
def test_every_route_leads_where_it_should(labels, receiver):
    output = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels],
                            capture_output=True, text=True, timeout=30)
    assert output.stdout.strip() == receiver, output.stdout + output.stderr


def test_every_route_of_the_config_is_covered_above():
    routes = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["route"]["routes"]
    covered = {"watchdog", "critical", "default", "info"}
    assert {route["receiver"] for route in routes} <= covered


@pytest.mark.parametrize("rule", every_alert_rule(), ids=lambda r: r["alert"])
def test_alerts_follow_mixin_style(rule):
    assert re.fullmatch(r"Sollol[A-Z][A-Za-z]+", rule["alert"])
    assert rule["labels"]["severity"] in ("critical", "warning", "info")
    assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
    anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    assert f"## {rule['alert']}" in runbooks and anchor == rule["alert"].lower()


@pytest.mark.parametrize("where, rules", [("shipped", alert_rules), ("optional", every_alert_rule)])
def test_every_alert_has_a_firing_and_a_quiet_unit_test(where, rules):
    tests = unit_tests() + (unit_tests(PROM / "tests" / "optional") if where == "optional" else [])
    firing, quiet = set(), set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in rules()}
    assert names - firing == set()
    assert names - quiet - {"SollolWatchdog"} == set()


def test_the_optional_alerts_are_off_in_the_shipped_rules():
    shipped = {rule["alert"] for rule in alert_rules()}
    optional = {rule["alert"] for rule in every_alert_rule()} - shipped
    assert optional == {"SollolNodeErrorRatioHigh", "SollolModelLatencyHigh"}


# Sloth's info series keeps Sloth's name, so that its dashboards find the SLOs.
SLOTH_NAMES = {"sloth_slo_info"}


def test_every_recording_rule_has_an_expression_test():
    exprs = [check["expr"] for case in unit_tests() for check in case.get("promql_expr_test", [])]
    untested = {rule["record"] for rule in recording_rules()
                if not any(re.search(rf"(?<![\w:]){re.escape(rule['record'])}(?![\w:])", expr) for expr in exprs)}
    assert untested == set()
    for rule in recording_rules():
        assert rule["record"] in SLOTH_NAMES or re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", rule["record"]), rule["record"]


def runbook_sections() -> dict[str, str]:
    text = (ROOT / "docs" / "runbooks.md").read_text()
    return {title: body for title, body in re.findall(r"^## (\S+)\n(.*?)(?=^## |\Z)", text, re.S | re.M)}


RUNBOOK_SHAPE = re.compile(
    r"\*\*Severity:\*\* (?P<severity>critical|warning|info) · \*\*For:\*\* (?P<for>\S+|always firing)\n\n"
    r"\*\*Meaning\.\*\* \S.*?\n\n"
    r"\*\*Impact\.\*\* \S.*?\n\n"
    r"\*\*Checks\*\*\n1\. \S.*?\n2\. \S.*?\n3\. \S[^\n]*(?:\n   [^\n]+)*\n*", re.S)


def test_every_runbook_has_the_same_sections_and_states_the_alert_s_severity_and_for():
    sections = runbook_sections()
    rules = {rule["alert"]: rule for rule in every_alert_rule()}
    assert list(sections) == list(rules), "one section per alert, in the order of the rule file"
    for name, body in sections.items():
        shape = RUNBOOK_SHAPE.fullmatch(body)
        assert shape, f"{name}: not Severity/For, Meaning, Impact, three Checks"
        assert shape["severity"] == rules[name]["labels"]["severity"], name
        assert shape["for"] == rules[name].get("for", "always firing"), name


def test_the_runbook_shape_check_catches_a_missing_section():
    good = "**Severity:** info · **For:** 5m\n\n**Meaning.** M.\n\n**Impact.** I.\n\n**Checks**\n1. a\n2. b\n3. c\n"
    assert RUNBOOK_SHAPE.fullmatch(good)
    assert not RUNBOOK_SHAPE.fullmatch(good.replace("**Impact.** I.\n\n", ""))
    assert not RUNBOOK_SHAPE.fullmatch(good.replace("3. c\n", ""))


def test_the_readme_alert_table_lists_every_alert_with_its_severity_and_for():
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("Sollol"):
            for name, window in zip(cells[0].split(" / "), cells[2].split(" / "), strict=True):
                rows[name] = (cells[1], window)
    expected = {rule["alert"]: (rule["labels"]["severity"], rule.get("for", "—")) for rule in every_alert_rule()}
    assert rows == expected
