"""The shipped Prometheus and Alertmanager configuration, checked by the real promtool and amtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

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


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alerts_follow_mixin_style(rule):
    assert re.fullmatch(r"Sollol[A-Z][A-Za-z]+", rule["alert"])
    assert rule["labels"]["severity"] in ("critical", "warning", "info")
    assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
    anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    assert f"## {rule['alert']}" in runbooks and anchor == rule["alert"].lower()


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    tests = yaml.safe_load((PROM / "tests" / "sollol-alerts.test.yml").read_text())["tests"]
    firing, quiet = set(), set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set()
    assert names - quiet - {"SollolWatchdog"} == set()


def test_every_recording_rule_has_an_expression_test():
    tests = yaml.safe_load((PROM / "tests" / "sollol-recording.test.yml").read_text())["tests"]
    tested = {check["expr"] for case in tests for check in case.get("promql_expr_test", [])}
    assert {rule["record"] for rule in recording_rules()} <= tested
    for rule in recording_rules():
        assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", rule["record"]), rule["record"]


def test_a_coordinator_down_silences_its_workers_in_a_real_alertmanager(tmp_path):
    import time

    import requests

    from tests.support.prometheus_stack import Alertmanager
    from tests.support.webhook import WebhookReceiver

    receiver = WebhookReceiver()
    manager = Alertmanager(tmp_path, receiver.url)
    try:
        common = {"cluster": "c1", "instance": "exp:9877", "coordinator": "main"}
        alerts = [
            {"labels": {"alertname": "SollolCoordinatorDown", "severity": "critical", **common}},
            {"labels": {"alertname": "SollolRpcBackendDown", "severity": "critical", "backend": "10.0.0.45:50052", **common}},
            {"labels": {"alertname": "SollolOllamaNodeDown", "severity": "warning", "cluster": "c1", "instance": "exp:9877", "node": "n:11434"}},
        ]
        assert requests.post(manager.url + "/api/v2/alerts", json=alerts, timeout=5).status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states = {a["labels"]["alertname"]: a["status"] for a in requests.get(manager.url + "/api/v2/alerts", timeout=5).json()}
            if states.get("SollolRpcBackendDown", {}).get("state") == "suppressed":
                break
            time.sleep(0.2)
        assert states["SollolRpcBackendDown"]["inhibitedBy"], states
        assert states["SollolCoordinatorDown"]["state"] == "active"
        assert states["SollolOllamaNodeDown"]["state"] == "active"
    finally:
        manager.stop()
        receiver.stop()
