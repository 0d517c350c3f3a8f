"""deploy/kubernetes: the base and every combination of its components, built with `kubectl kustomize` and
validated against Kubernetes' schemas (the Prometheus Operator's kinds structurally); secrets only in Secrets;
the flags, mounts, probes and ServiceMonitor each component sets; the PrometheusRule equal to the shipped rule
files and keeping their comments; the dashboards as labelled ConfigMaps."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import bcrypt
import kubernetes_validate
import pytest
import yaml

from sollol_exporter.web import config as web_config

ROOT = Path(__file__).resolve().parent.parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
VERSION = "1.30.0"
NAMESPACE = "monitoring"
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))

# The documented order: prometheus-operator before web-config, whose patch switches the ServiceMonitor to https.
COMPONENTS = ("prometheus-operator", "grafana-dashboards", "config-file", "web-config")
EXTERNAL_SECRETS = {"sollol-exporter-tls"}  # created by the user (cert-manager or kubectl), not by kustomize
CONFIG_FLAG, WEB_CONFIG_FLAG = "--config.file", "--web.config.file"


@dataclass(frozen=True)
class Build:
    name: str
    components: frozenset[str]
    objects: list[dict]

    def kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict:
        (found,) = self.kind(kind)
        return found

    def named(self, kind: str, name: str) -> dict | None:
        return next((o for o in self.kind(kind) if o["metadata"]["name"] == name), None)

    @property
    def pod(self) -> dict:
        return self.one("Deployment")["spec"]["template"]["spec"]

    @property
    def container(self) -> dict:
        (container,) = self.pod["containers"]
        return container

    def flag(self, flag: str) -> str | None:
        values = [a.split("=", 1)[1] for a in self.container.get("args", []) if a.startswith(flag + "=")]
        assert len(values) <= 1, f"{flag} given twice"
        return values[0] if values else None

    def secret_data(self, secret: dict) -> dict[str, str]:
        return {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()} | secret.get("stringData", {})

    def mounted_file(self, path: str) -> tuple[dict, str]:
        """The volume that holds `path` in the container, and the key (file name) inside it."""
        path = PurePosixPath(path)
        mount = next((m for m in self.container.get("volumeMounts", []) if path.parent == PurePosixPath(m["mountPath"])), None)
        assert mount is not None, f"nothing is mounted at {path.parent}"
        assert "subPath" not in mount, "subPath mounts are not updated in place"
        volume = next(v for v in self.pod["volumes"] if v["name"] == mount["name"])
        return volume, path.name

    def file_text(self, path: str) -> str:
        """The text the container reads at `path`, from the ConfigMap or Secret of this build mounted there."""
        volume, key = self.mounted_file(path)
        if "configMap" in volume:
            source = self.named("ConfigMap", volume["configMap"]["name"])
            assert source is not None, f"ConfigMap {volume['configMap']['name']} is not in the build"
            return source["data"][key]
        source = self.named("Secret", volume["secret"]["secretName"])
        assert source is not None, f"Secret {volume['secret']['secretName']} is not in the build"
        return self.secret_data(source)[key]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl (for `kubectl kustomize`) is not installed")
    return found


def kustomize(directory: Path) -> list[dict]:
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def combination(tmp: Path, components: tuple[str, ...], **fields) -> list[dict]:
    """A user's kustomization: the base plus these components (paths relative: kustomize refuses absolute ones),
    plus any other kustomization fields."""
    relative = lambda target: os.path.relpath(target, tmp)  # noqa: E731
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": NAMESPACE,
        "resources": [relative(KUBE / "base")],
        "components": [relative(KUBE / "components" / name) for name in components],
        **fields,
    }))
    return kustomize(tmp)


CLUSTER_SOURCE = "sollol-exporter-cluster"  # the base's local-config ConfigMap holding the cluster label's value


def cluster_literals(kustomization: Path) -> list[str]:
    """The `cluster=` values a kustomization's own generators set for the cluster label."""
    generators = yaml.safe_load(kustomization.read_text()).get("configMapGenerator", [])
    return [literal.split("=", 1)[1] for g in generators if g["name"] == CLUSTER_SOURCE
            for literal in g.get("literals", []) if literal.startswith("cluster=")]


CASES = {
    "plain": None,  # kubectl apply -k deploy/kubernetes
    "base": (),
    **{name: (name,) for name in COMPONENTS},
    "all": COMPONENTS,
    "example": "overlays/example",
}


@pytest.fixture(scope="module", params=list(CASES))
def build(request, tmp_path_factory) -> Build:
    case = CASES[request.param]
    if case is None:
        return Build(request.param, frozenset(), kustomize(KUBE))
    if isinstance(case, str):
        return Build(request.param, frozenset(COMPONENTS), kustomize(KUBE / case))
    return Build(request.param, frozenset(case), combination(tmp_path_factory.mktemp(request.param), case))


@pytest.fixture(scope="module")
def example() -> Build:
    return Build("example", frozenset(COMPONENTS), kustomize(KUBE / "overlays" / "example"))


# -- every combination ---------------------------------------------------------------------------------------------

SERVICE_MONITOR_ENDPOINT_KEYS = {"port", "interval", "scrapeTimeout", "relabelings", "scheme", "tlsConfig", "basicAuth"}
RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}


def test_objects_are_valid_kubernetes_and_operator_kinds_are_well_formed(build):
    for obj in build.objects:
        assert obj["metadata"].get("namespace") == NAMESPACE, (obj["kind"], obj["metadata"]["name"])
        if obj["apiVersion"] == "monitoring.coreos.com/v1":
            assert obj["kind"] in {"ServiceMonitor", "PrometheusRule"} and set(obj) == {"apiVersion", "kind", "metadata", "spec"}
            if obj["kind"] == "ServiceMonitor":
                assert set(obj["spec"]) == {"jobLabel", "selector", "endpoints"}
                assert all(set(e) <= SERVICE_MONITOR_ENDPOINT_KEYS for e in obj["spec"]["endpoints"])
            else:
                for group in obj["spec"]["groups"]:
                    assert set(group) <= {"name", "interval", "rules"} and group["rules"]
                    assert all(set(rule) <= RULE_KEYS and ("alert" in rule) != ("record" in rule) for rule in group["rules"])
            continue
        kubernetes_validate.validate(obj, VERSION, strict=True)
    kinds = {o["kind"] for o in build.objects}
    assert kinds >= {"Deployment", "Service", "ConfigMap", "Secret"}


def test_the_base_needs_no_custom_resources(build):
    operator = "prometheus-operator" in build.components
    assert any(o["apiVersion"].startswith("monitoring.coreos.com") for o in build.objects) == operator
    dashboards = [o for o in build.kind("ConfigMap") if o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    assert bool(dashboards) == ("grafana-dashboards" in build.components)


def test_secrets_are_in_secrets_only(build):
    secrets = [v for s in build.kind("Secret") for k, v in build.secret_data(s).items() if k != "username"]
    assert secrets
    for config_map in build.kind("ConfigMap"):
        for key, text in config_map.get("data", {}).items():
            assert "REDIS_URL" not in key and not re.search(r"://[^/\s@]*:[^/\s@]+@", text), key  # no user:password@
            assert not any(secret in text for secret in secrets), (config_map["metadata"]["name"], key)
            if key.endswith((".yml", ".yaml")):
                parsed = yaml.safe_load(text) or {}
                assert "url" not in parsed.get("redis", {}), "the Redis URL belongs in the Secret"
                assert not any(c.get("api_key") for c in parsed.get("coordinators", [])), "API keys: api_key_file"


def test_the_deployment_reads_the_redis_url_from_the_secret(build):
    (env,) = [e for e in build.container["env"] if e["name"] == "SOLLOL_REDIS_URL"]
    ref = env["valueFrom"]["secretKeyRef"]
    secret = build.named("Secret", ref["name"])
    assert secret is not None and re.match(r"rediss?://", build.secret_data(secret)[ref["key"]])
    (env_from,) = build.container["envFrom"]
    env_map = build.named("ConfigMap", env_from["configMapRef"]["name"])
    assert set(env_map["data"]) == {"SOLLOL_COORDINATOR_HOST", "SOLLOL_COORDINATOR_PORT", "SOLLOL_DASHBOARD_HOST",
                                    "SOLLOL_DASHBOARD_PORT"}


def test_every_mounted_config_map_and_secret_exists(build):
    for volume in build.pod.get("volumes", []):
        if "configMap" in volume:
            assert build.named("ConfigMap", volume["configMap"]["name"]), volume
        elif "secret" in volume:
            name = volume["secret"]["secretName"]
            assert build.named("Secret", name) or name in EXTERNAL_SECRETS or volume["secret"].get("optional"), volume
            assert volume["secret"].get("defaultMode") == 0o440  # readable through fsGroup only
    assert build.pod["securityContext"]["fsGroup"] == build.pod["securityContext"]["runAsGroup"]


def test_exporter_runs_as_non_root(build):
    assert build.pod["securityContext"]["runAsNonRoot"] is True
    assert build.container["securityContext"]["readOnlyRootFilesystem"] is True
    assert build.one("Deployment")["spec"]["replicas"] == 1


def test_an_update_never_runs_two_exporters(build):
    """Recreate: a rolling update would start the new exporter beside the old, two readers of llama-server's /metrics."""
    assert build.one("Deployment")["spec"]["strategy"] == {"type": "Recreate"}


def test_the_cluster_label_source_is_never_applied(build):
    assert build.named("ConfigMap", CLUSTER_SOURCE) is None
    assert not any("config.kubernetes.io/local-config" in o["metadata"].get("annotations", {}) for o in build.objects)


def test_config_file_flag_exactly_with_its_component_and_mounted_where_it_points(build, tmp_path):
    path = build.flag(CONFIG_FLAG)
    assert (path is not None) == ("config-file" in build.components)
    if path is None:
        return
    volume, _ = build.mounted_file(path)
    assert "configMap" in volume  # not a secret: the Redis URL and API keys stay in Secrets
    written = tmp_path / "config.yml"
    written.write_text(build.file_text(path))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SOLLOL_")}
    check = subprocess.run([sys.executable, "-m", "sollol_exporter", "--config.check", "--config.file", str(written)],
                           capture_output=True, text=True, env=environment)
    assert check.returncode == 0, check.stdout + check.stderr
    for coordinator in (yaml.safe_load(written.read_text()) or {}).get("coordinators", []):
        if coordinator.get("api_key_file"):
            volume, _ = build.mounted_file(coordinator["api_key_file"])
            assert volume["secret"]["secretName"].startswith("sollol-exporter-config-secrets")


def test_web_config_flag_exactly_with_its_component_and_probes_that_need_no_password(build, tmp_path):
    path = build.flag(WEB_CONFIG_FLAG)
    assert (path is not None) == ("web-config" in build.components)
    probes = (build.container["livenessProbe"], build.container["readinessProbe"])
    if path is None:
        assert [p["httpGet"]["path"] for p in probes] == ["/-/healthy", "/-/ready"]
        return
    assert all(set(p) - {"periodSeconds"} == {"tcpSocket"} and p["tcpSocket"]["port"] == "metrics" for p in probes)
    volume, _ = build.mounted_file(path)
    assert "secret" in volume  # holds the password hashes
    written = tmp_path / "web-config.yml"
    written.write_text(build.file_text(path))
    loaded = web_config.load(str(written))
    assert loaded.users
    for file in (loaded.tls.cert_file, loaded.tls.key_file):
        volume, key = build.mounted_file(file)
        assert volume["secret"]["secretName"] in EXTERNAL_SECRETS and key in {"tls.crt", "tls.key"}


def test_a_web_config_gets_a_writable_tmp_for_inline_pem(build):
    """The root filesystem is read-only: inline cert/key PEM may need a scratch file (where memfd is missing)."""
    mounts = {m["mountPath"]: m for m in build.container.get("volumeMounts", [])}
    if "web-config" not in build.components:
        return
    assert "/tmp" in mounts and not mounts["/tmp"].get("readOnly")
    volume = next(v for v in build.pod["volumes"] if v["name"] == mounts["/tmp"]["name"])
    assert volume["emptyDir"].get("medium") == "Memory" and volume["emptyDir"].get("sizeLimit")


def test_service_monitor_selects_the_service_and_sets_job_and_cluster(build):
    if "prometheus-operator" not in build.components:
        return
    service, monitor = build.one("Service"), build.one("ServiceMonitor")
    spec = monitor["spec"]
    assert all(service["metadata"]["labels"][k] == v for k, v in spec["selector"]["matchLabels"].items())
    assert service["metadata"]["labels"][spec["jobLabel"]] == "sollol"  # the alert rules look for job="sollol"
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    (cluster,) = [r for r in endpoint["relabelings"] if r.get("targetLabel") == "cluster"]
    expected = cluster_literals(KUBE / "overlays" / "example" / "kustomization.yaml") if build.name == "example" else ["sollol"]
    assert cluster == {"targetLabel": "cluster", "replacement": expected[0]}
    if "web-config" not in build.components:
        assert "scheme" not in endpoint and "basicAuth" not in endpoint
        return
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["ca"]["secret"] == {"name": "sollol-exporter-tls", "key": "ca.crt"}
    assert endpoint["tlsConfig"]["serverName"] == f"{service['metadata']['name']}.{NAMESPACE}.svc"
    auth = endpoint["basicAuth"]
    secret = build.named("Secret", auth["username"]["name"])  # the generated name, hash suffix included
    assert secret is not None and auth["password"]["name"] == auth["username"]["name"]
    assert {auth["username"]["key"], auth["password"]["key"]} <= set(build.secret_data(secret))


def test_prometheus_rule_equals_the_rule_files(build):
    if "prometheus-operator" not in build.components:
        return
    groups = [group for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]
    assert build.one("PrometheusRule")["spec"]["groups"] == groups


def test_dashboards_are_labelled_config_maps_with_the_same_json(build):
    if "grafana-dashboards" not in build.components:
        return
    maps = [o for o in build.kind("ConfigMap") if o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    files = {p.name: json.loads(p.read_text()) for p in (ROOT / "grafana" / "dashboards").glob("*.json")}
    shipped = {name: json.loads(text) for m in maps for name, text in m["data"].items()}
    assert shipped == files


# -- the cluster label: one value, one place -----------------------------------------------------------------------


def test_the_cluster_label_value_lives_in_the_base_only():
    assert cluster_literals(KUBE / "base" / "kustomization.yaml") == ["sollol"]
    for path in sorted((KUBE / "components").rglob("*.yaml")):
        if path.name in {"prometheusrule.yaml", "grafana-dashboards.yaml"}:
            continue
        for document in yaml.safe_load_all(path.read_text()):
            for endpoint in ((document or {}).get("spec") or {}).get("endpoints", []):
                for relabeling in endpoint.get("relabelings", []):
                    if relabeling.get("targetLabel") == "cluster":
                        assert "replacement" not in relabeling, f"{path}: the value belongs in the base"
    assert not any(cluster_literals(path) for path in (KUBE / "components").rglob("kustomization.yaml"))


@pytest.mark.parametrize("components", [("prometheus-operator",), COMPONENTS], ids=["operator", "all"])
def test_an_overlay_changes_the_cluster_label_in_one_place(tmp_path, components):
    override = {"name": CLUSTER_SOURCE, "behavior": "merge", "literals": ["cluster=prod-eu"]}
    objects = combination(tmp_path, components, configMapGenerator=[override])
    (monitor,) = [o for o in objects if o["kind"] == "ServiceMonitor"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert [r for r in endpoint["relabelings"] if r["targetLabel"] == "cluster"] == [
        {"targetLabel": "cluster", "replacement": "prod-eu"}]
    assert not any(o["metadata"]["name"] == CLUSTER_SOURCE for o in objects)


def test_the_example_sets_its_own_cluster_label():
    assert cluster_literals(KUBE / "overlays" / "example" / "kustomization.yaml") not in ([], ["sollol"])


# -- the shipped placeholders and the example ----------------------------------------------------------------------


def scrape_credentials(build: Build) -> tuple[str, str]:
    (endpoint,) = build.one("ServiceMonitor")["spec"]["endpoints"]
    data = build.secret_data(build.named("Secret", endpoint["basicAuth"]["username"]["name"]))
    return data[endpoint["basicAuth"]["username"]["key"]], data[endpoint["basicAuth"]["password"]["key"]]


def web_users(build: Build) -> dict[str, str]:
    return yaml.safe_load(build.file_text(build.flag(WEB_CONFIG_FLAG)))["basic_auth_users"]


def test_the_component_placeholders_open_nothing(tmp_path):
    """The web-config component alone: its scrape password is not the one hashed in its web config."""
    shipped = Build("all", frozenset(COMPONENTS), combination(tmp_path / "all", COMPONENTS))
    user, password = scrape_credentials(shipped)
    assert not bcrypt.checkpw(password.encode(), web_users(shipped)[user].encode())


def test_the_example_scrape_credentials_match_its_web_config(example):
    user, password = scrape_credentials(example)
    assert bcrypt.checkpw(password.encode(), web_users(example)[user].encode())
    assert "release" in example.one("ServiceMonitor")["metadata"]["labels"]
    assert "release" in example.one("PrometheusRule")["metadata"]["labels"]
    assert example.container["image"].startswith("registry.example.com/")


def test_a_web_config_listed_before_the_operator_component_leaves_the_service_monitor_plain(tmp_path):
    """Why the order matters (and is documented): web-config's patch finds no ServiceMonitor yet."""
    objects = combination(tmp_path / "reversed", ("web-config", "prometheus-operator"))
    (monitor,) = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert "scheme" not in monitor["spec"]["endpoints"][0]


# -- generated files -----------------------------------------------------------------------------------------------


def test_generated_files_are_up_to_date():
    result = subprocess.run([sys.executable, str(KUBE / "generate.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_generator_writes_into_out_and_its_check_names_a_drifted_file(tmp_path):
    command = [sys.executable, str(KUBE / "generate.py"), "--out", str(tmp_path)]
    subprocess.run(command, check=True)
    names = ["components/prometheus-operator/prometheusrule.yaml", "components/grafana-dashboards/grafana-dashboards.yaml"]
    assert sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*.yaml")) == sorted(names)
    for name in names:
        assert (tmp_path / name).read_text() == (KUBE / name).read_text(), name
    (tmp_path / names[1]).write_text("# edited by hand\n")
    result = subprocess.run([*command, "--check"], capture_output=True, text=True)
    assert result.returncode == 1 and "grafana-dashboards.yaml" in result.stderr and "prometheusrule.yaml" not in result.stderr


def test_prometheus_rule_keeps_every_comment_of_the_rule_files_in_order():
    generated = (KUBE / "components" / "prometheus-operator" / "prometheusrule.yaml").read_text().splitlines()
    comments = [line.strip() for line in generated if line.lstrip().startswith("#")]
    expected = [line.strip() for path in RULE_FILES for line in path.read_text().splitlines() if line.lstrip().startswith("#")]
    expected_inline = [line.split(" #", 1)[1] for path in RULE_FILES for line in path.read_text().splitlines()
                       if " #" in line and not line.lstrip().startswith("#")]
    position = 0
    for comment in expected:
        position = comments.index(comment, position) + 1  # ValueError: a comment was lost or moved
    text = "\n".join(generated)
    assert all(inline in text for inline in expected_inline)
