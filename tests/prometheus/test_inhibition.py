"""Inhibition in a real Alertmanager running the shipped alertmanager.yml: an alert is silenced by exactly the alerts
that explain it, and by nothing else.

All scenarios go to one Alertmanager at once, each under its own cluster label (every inhibit rule compares the
cluster), with the labels the generated rules give each alert. Alertmanager reports `suppressed` and the inhibiting
alerts' fingerprints in `status.inhibitedBy`; an alert that must stay active is checked only after every alert that
must be suppressed is, so a slow inhibitor cannot pass the test by accident."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.support.prometheus_stack import Alertmanager
from tests.support.webhook import WebhookReceiver

PROM = Path(__file__).resolve().parent.parent.parent / "prometheus"
ALERTMANAGER_CONFIG = PROM / "alertmanager" / "alertmanager.yml"
INSTANCE = "exp:9877"


def alert(name: str, severity: str, **labels: str) -> dict:
    return {"alertname": name, "severity": severity, "instance": INSTANCE, **labels}


def burn(name: str, **target: str) -> dict:
    """A burn-rate alert as the generated rules label it: its SLO (Sloth's labels) and level, no job label."""
    stem, fast = re.fullmatch(r"Sollol(\w+?)(Fast|Slow)Burn", name).groups()
    slo = re.sub(r"(?<!^)([A-Z])", r"-\1", stem).lower()
    return alert(name, "critical" if fast == "Fast" else "warning", **target, sloth_id=f"sollol-{slo}", sloth_service="sollol",
                 sloth_slo=slo, sloth_severity="page" if fast == "Fast" else "ticket")


REDIS_DOWN = alert("SollolRedisDown", "critical", job="sollol")
COORDINATOR_DOWN = alert("SollolCoordinatorDown", "critical", job="sollol", coordinator="main")
EXPORTER_DOWN = alert("SollolExporterDown", "critical", job="sollol")
NODES_ALL_DOWN = alert("SollolOllamaNodesAllDown", "critical")

# scenario: (alerts posted, {index of an alert: index of the alert that must silence it, or None: must stay active})
SCENARIOS = {
    "redis-down-leaves-application-heartbeats": (
        [REDIS_DOWN, alert("SollolApplicationStoppedHeartbeating", "warning", job="sollol", app="A", router_type="IntelligentRouter")],
        {0: None, 1: None}),
    "redis-down-silences-metadata-staleness": (
        [REDIS_DOWN, alert("SollolRouterMetadataStale", "warning", job="sollol")],
        {0: None, 1: 0}),
    "redis-down-leaves-model-latency": (
        [REDIS_DOWN, alert("SollolModelLatencyHigh", "warning", model="llama3.1:70b", quantile="0.95", streaming="false")],
        {1: None}),
    "redis-down-silences-what-is-read-from-redis": (
        [REDIS_DOWN,
         alert("SollolGpuTelemetryStale", "warning", node="10.0.0.5:11434"),
         alert("SollolEventsSilent", "warning"),
         *(alert("SollolExporterCollectorFailing", "warning", job="sollol", collector=name)
           for name in ("redis", "metadata", "gpu", "rpc_nodes", "routing", "events"))],
        {index: 0 for index in range(1, 9)}),
    "redis-down-leaves-the-other-collectors": (
        [REDIS_DOWN,
         *(alert("SollolExporterCollectorFailing", "warning", job="sollol", collector=name)
           for name in ("applications", "coordinator", "ollama", "rpc_backends"))],
        {1: None, 2: None, 3: None, 4: None}),
    "redis-down-leaves-node-alerts": (
        [REDIS_DOWN, alert("SollolOllamaNodeDown", "warning", job="sollol", node="10.0.0.5:11434"),
         alert("SollolNodeErrorRatioHigh", "warning", node="10.0.0.5:11434"),
         alert("SollolGpuMemoryNearlyFull", "warning", job="sollol", node="10.0.0.5:11434", gpu="0")],
        {1: None, 2: None, 3: None}),
    "coordinator-down-silences-its-workers-only": (
        [COORDINATOR_DOWN,
         alert("SollolRpcBackendDown", "critical", backend="10.0.0.45:50052", coordinator="main"),
         alert("SollolRpcBackendsAllDown", "critical", coordinator="main"),
         alert("SollolRpcBackendDown", "critical", backend="10.0.0.48:50052", coordinator="other"),
         alert("SollolRpcBackendDown", "critical", backend="10.0.0.9:50052")],
        {0: None, 1: 0, 2: 0, 3: None, 4: None}),
    "all-workers-down-silences-each-worker": (
        [alert("SollolRpcBackendsAllDown", "critical", coordinator="main"),
         alert("SollolRpcBackendDown", "critical", backend="10.0.0.45:50052", coordinator="main"),
         alert("SollolRpcBackendDown", "critical", backend="10.0.0.48:50052", coordinator="other")],
        {1: 0, 2: None}),
    "critical-silences-warnings-of-the-same-coordinator": (
        [COORDINATOR_DOWN,
         alert("SollolCoordinatorQueueBackingUp", "warning", job="sollol", coordinator="main"),
         alert("SollolCoordinatorQueueBackingUp", "warning", job="sollol", coordinator="other")],
        {1: 0, 2: None}),
    "a-critical-worker-leaves-other-workers-warnings": (
        [alert("SollolRpcBackendDown", "critical", backend="10.0.0.45:50052", coordinator="main"),
         alert("SollolRpcBackendVersionSkew", "warning", job="sollol", backend="10.0.0.45:50052", coordinator="main"),
         alert("SollolRpcBackendVersionSkew", "warning", job="sollol", backend="10.0.0.48:50052", coordinator="main")],
        {1: 0, 2: None}),
    "a-critical-node-alert-leaves-model-and-app-alerts": (
        [alert("SollolCoordinatorStalled", "critical", job="sollol", coordinator="main", state="stalled"),
         alert("SollolModelLatencyHigh", "warning", model="m1", quantile="0.95", streaming="false"),
         alert("SollolApplicationStoppedHeartbeating", "warning", job="sollol", app="A", router_type="IntelligentRouter"),
         alert("SollolExporterConfigReloadFailed", "warning", job="sollol")],
        {1: None, 2: None, 3: None}),
    "all-ollama-nodes-down-silences-each-node": (
        [NODES_ALL_DOWN, alert("SollolOllamaNodeDown", "warning", job="sollol", node="10.0.0.5:11434"),
         alert("SollolOllamaNodeFalselyAvailable", "warning", job="sollol", node="10.0.0.5:11434")],
        {0: None, 1: 0, 2: 0}),
    "exporter-down-silences-what-it-reported": (
        [EXPORTER_DOWN, alert("SollolGpuTelemetryStale", "warning", node="10.0.0.5:11434"),
         alert("SollolRpcBackendDown", "critical", backend="10.0.0.45:50052", coordinator="main")],
        {0: None, 1: 0, 2: 0}),
    "a-fast-burn-silences-the-slow-burn-of-its-own-slo-and-node-only": (
        [burn("SollolNodeAvailabilityFastBurn", node="10.0.0.5:11434"),
         burn("SollolNodeAvailabilitySlowBurn", node="10.0.0.5:11434"),
         burn("SollolNodeAvailabilitySlowBurn", node="10.0.0.6:11434"),
         alert("SollolOllamaNodeDown", "warning", job="sollol", node="10.0.0.5:11434")],
        {0: None, 1: 0, 2: None, 3: None}),
    "a-latency-page-leaves-the-availability-ticket-of-the-same-coordinator-and-model": (
        [burn("SollolCoordinatorLatencyFastBurn", coordinator="main", model="tiny"),
         burn("SollolCoordinatorAvailabilitySlowBurn", coordinator="main", model="tiny"),
         burn("SollolCoordinatorLatencySlowBurn", coordinator="main", model="tiny"),
         burn("SollolCoordinatorLatencySlowBurn", coordinator="main", model="big")],
        {0: None, 1: None, 2: 0, 3: None}),
    "a-model-s-latency-page-leaves-other-models": (
        [burn("SollolModelLatencyFastBurn", model="m1"), burn("SollolModelLatencySlowBurn", model="m2"),
         burn("SollolModelLatencySlowBurn", model="m1")],
        {1: None, 2: 0}),
    "coordinator-down-silences-the-slo-burns-of-its-models": (
        [COORDINATOR_DOWN,
         burn("SollolCoordinatorAvailabilityFastBurn", coordinator="main", model="tiny"),
         burn("SollolCoordinatorLatencyFastBurn", coordinator="main", model="big"),
         burn("SollolCoordinatorAvailabilitySlowBurn", coordinator="main", model="big"),
         burn("SollolCoordinatorAvailabilityFastBurn", coordinator="other", model="tiny")],
        {0: None, 1: 0, 2: 0, 3: 0, 4: None}),
    "all-ollama-nodes-down-silences-each-node-s-burn": (
        [NODES_ALL_DOWN, burn("SollolNodeAvailabilityFastBurn", node="10.0.0.5:11434"),
         burn("SollolNodeAvailabilitySlowBurn", node="10.0.0.6:11434"), burn("SollolModelLatencyFastBurn", model="m1")],
        {0: None, 1: 0, 2: 0, 3: None}),
    "redis-down-leaves-the-applications-burn-and-an-application-s-page-leaves-other-warnings": (
        [REDIS_DOWN, burn("SollolApplicationAvailabilityFastBurn", source="pool"),
         burn("SollolApplicationAvailabilitySlowBurn", source="synaptic_llamas"),
         alert("SollolRouterMetadataStale", "warning", job="sollol"),
         alert("SollolApplicationStoppedHeartbeating", "warning", job="sollol", app="A", router_type="IntelligentRouter")],
        {1: None, 2: None, 3: 0, 4: None}),
    "exporter-down-silences-the-burns-it-reported": (
        [EXPORTER_DOWN, burn("SollolNodeAvailabilityFastBurn", node="10.0.0.5:11434")],
        {0: None, 1: 0}),
    "redis-down-of-one-exporter-leaves-another-exporter": (
        [REDIS_DOWN, {**alert("SollolRouterMetadataStale", "warning", job="sollol"), "instance": "other:9877"}],
        {1: None}),
}


@pytest.fixture(scope="module")
def alert_states(tmp_path_factory):
    """(scenario, index) -> (alert as Alertmanager reports it, fingerprint -> labels of every alert)."""
    receiver = WebhookReceiver()
    manager = Alertmanager(tmp_path_factory.mktemp("alertmanager"), receiver.url)
    try:
        posted = []
        for scenario, (alerts, _) in SCENARIOS.items():
            posted += [{"labels": {**labels, "cluster": scenario}} for labels in alerts]
        assert requests.post(manager.url + "/api/v2/alerts", json=posted, timeout=5).status_code == 200
        must_be_suppressed = sum(1 for _, expected in SCENARIOS.values() for source in expected.values() if source is not None)
        deadline = time.monotonic() + 20
        while True:
            reported = requests.get(manager.url + "/api/v2/alerts", timeout=5).json()
            suppressed = sum(1 for a in reported if a["status"]["state"] == "suppressed")
            if (len(reported) == len(posted) and suppressed >= must_be_suppressed) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(1)  # one more round for an inhibition that should not happen
        reported = requests.get(manager.url + "/api/v2/alerts", timeout=5).json()
        yield {a["fingerprint"]: a for a in reported}
    finally:
        manager.stop()
        receiver.stop()


def find(states: dict, labels: dict) -> dict:
    found = [a for a in states.values() if a["labels"] == labels]
    assert len(found) == 1, (labels, found)
    return found[0]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_an_alert_is_silenced_by_what_explains_it_and_by_nothing_else(alert_states, scenario):
    alerts, expected = SCENARIOS[scenario]
    labelled = [{**labels, "cluster": scenario} for labels in alerts]
    for index, source in expected.items():
        reported = find(alert_states, labelled[index])
        name = labelled[index]["alertname"]
        inhibitors = [alert_states[fp]["labels"] for fp in reported["status"]["inhibitedBy"]]
        if source is None:
            assert reported["status"]["state"] == "active" and not inhibitors, (name, inhibitors)
        else:
            assert reported["status"]["state"] == "suppressed", (name, reported["status"])
            assert labelled[source] in inhibitors, (name, inhibitors)


def identifying_labels_of_every_alert() -> set[str]:
    """Every label a firing alert carries in the promtool unit tests (the optional alerts' too), other than those that
    describe rather than identify (severity, sloth_severity, state, quantile, streaming) and `job` (alerts read from
    recording rules do not carry it)."""
    files = [*sorted((PROM / "tests").glob("*.yml")), *sorted((PROM / "tests" / "optional").glob("*.yml"))]
    tests = [case for path in files for case in yaml.safe_load(path.read_text())["tests"]]
    labels = {name for case in tests for check in case.get("alert_rule_test", []) for exp in check["exp_alerts"]
              for name in exp.get("exp_labels", {})}
    return labels - {"severity", "sloth_severity", "state", "quantile", "streaming", "job"}


def test_critical_silences_warning_only_when_every_identifying_label_is_equal():
    rules = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["inhibit_rules"]
    (rule,) = [r for r in rules if r["source_matchers"] == ['severity="critical"']]
    identifying = identifying_labels_of_every_alert()
    assert {"cluster", "instance", "node", "model", "app", "collector", "backend", "coordinator", "gpu", "source",
            "sloth_id", "sloth_service", "sloth_slo"} <= identifying
    assert identifying <= set(rule["equal"]), identifying - set(rule["equal"])


def test_every_inhibit_rule_names_alerts_that_exist():
    names = {rule["alert"] for group in yaml.safe_load((PROM / "rules" / "sollol-alerts.yml").read_text())["groups"]
             for rule in group["rules"]}
    for rule in yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            found = re.fullmatch(r'alertname(?:=~|!~|=|!=)"([^"]*)"', matcher)
            if found:
                assert all(name in names for name in found.group(1).split("|")), matcher
