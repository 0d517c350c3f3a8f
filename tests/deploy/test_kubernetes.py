"""deploy/kubernetes: built with kustomize, core objects validated against Kubernetes' schemas, the
PrometheusRule equal to the shipped rule files, the dashboards as labelled ConfigMaps."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
VERSION = "1.30.0"


@pytest.fixture(scope="module")
def objects():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl (for `kubectl kustomize`) is not installed")
    built = subprocess.run([kubectl, "kustomize", str(KUBE)], capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(built) if doc]


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def test_generated_files_are_up_to_date():
    result = subprocess.run([sys.executable, str(KUBE / "generate.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_core_objects_are_valid_kubernetes(objects):
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com"):
            continue
        kubernetes_validate.validate(obj, VERSION, strict=True)
    assert {o["kind"] for o in objects} >= {"Deployment", "Service", "ConfigMap", "ServiceMonitor", "PrometheusRule"}


def test_exporter_runs_as_non_root_with_probes(objects):
    (deployment,) = by_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env_map = next(o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"] == container["envFrom"][0]["configMapRef"]["name"])
    assert set(env_map["data"]) == {"SOLLOL_REDIS_URL", "SOLLOL_COORDINATOR_HOST", "SOLLOL_COORDINATOR_PORT",
                                    "SOLLOL_DASHBOARD_HOST", "SOLLOL_DASHBOARD_PORT"}


def test_service_monitor_selects_the_service_and_sets_job_and_cluster(objects):
    (service,) = by_kind(objects, "Service")
    (monitor,) = by_kind(objects, "ServiceMonitor")
    spec = monitor["spec"]
    assert all(service["metadata"]["labels"][k] == v for k, v in spec["selector"]["matchLabels"].items())
    assert service["metadata"]["labels"][spec["jobLabel"]] == "sollol"  # the alert rules look for job="sollol"
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert {"targetLabel": "cluster", "replacement": "sollol"} in endpoint["relabelings"]


def test_prometheus_rule_equals_the_rule_files(objects):
    (rule,) = by_kind(objects, "PrometheusRule")
    groups = []
    for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    assert rule["spec"]["groups"] == groups


def test_dashboards_are_labelled_config_maps_with_the_same_json(objects):
    maps = [o for o in by_kind(objects, "ConfigMap") if o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    files = {p.name: json.loads(p.read_text()) for p in (ROOT / "grafana" / "dashboards").glob("*.json")}
    shipped = {name: json.loads(text) for m in maps for name, text in m["data"].items()}
    assert shipped == files
