"""The mixin: rule files generated from one config, committed, and following a user's job and cluster label."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mixin import generate
from mixin.config import Config
from mixin.rules import render

ROOT = Path(__file__).resolve().parent.parent.parent
PROM = ROOT / "prometheus"
KUBE = Config(job_selector='job="monitoring/sollol-exporter"', cluster_label="k8s_cluster")


def promtool(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)


def test_committed_rule_files_are_what_the_mixin_renders():
    assert generate.main(["--check"]) == 0, "run: .venv/bin/python -m mixin.generate"


def test_every_for_has_its_reason_and_every_summary_is_constant():
    text = render(Config())["sollol-alerts.yml"]
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith("for:"):
            above = index - 1
            while lines[above].strip().startswith("#") and not lines[above].strip().startswith("# for "):
                above -= 1
            assert lines[above].strip().startswith("# for "), f"no reason above {line.strip()} (line {index + 1})"
    for group in yaml.safe_load(text)["groups"]:
        for rule in group["rules"]:
            assert "{{" not in rule["annotations"]["summary"], rule["alert"]
            assert rule["annotations"]["runbook_url"].startswith("https://"), rule["alert"]


def test_runbook_base_is_one_setting():
    text = render(Config(runbook_url_base="https://wiki.example.org/sollol"))["sollol-alerts.yml"]
    urls = set(re.findall(r"runbook_url: (\S+)", text))
    assert urls and all(url.startswith("https://wiki.example.org/sollol#sollol") for url in urls)


def _renamed(text: str) -> str:
    """A unit-test file as a user whose job and cluster label differ would write it."""
    text = text.replace('job="sollol"', KUBE.job_selector)
    text = re.sub(r"\bjob: sollol\b", 'job: "monitoring/sollol-exporter"', text)
    text = re.sub(r'\bcluster="', 'k8s_cluster="', text)
    return re.sub(r"\bcluster: ", "k8s_cluster: ", text)


def _write_tree(tmp_path: Path, config: Config, transform) -> list[str]:
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for name, text in render(config).items():
        (tmp_path / "rules" / name).write_text(text)
    tests = []
    for source in sorted((PROM / "tests").glob("*.yml")):
        target = tmp_path / "tests" / source.name
        target.write_text(transform(source.read_text()))
        tests.append(str(target))
    return tests


def test_rules_follow_another_job_and_cluster_label(tmp_path):
    tests = _write_tree(tmp_path, KUBE, _renamed)
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "k8s_cluster" in (tmp_path / "rules" / "sollol-alerts.yml").read_text()


def test_the_default_rules_do_not_see_another_job(tmp_path):
    """The control for the test above: it passes because the rules follow the config, not by accident."""
    tests = _write_tree(tmp_path, Config(), _renamed)
    result = promtool("test", "rules", *tests)
    assert result.returncode != 0
    assert "SollolRpcBackendDown" in result.stdout + result.stderr


@pytest.mark.parametrize("config", [Config(), KUBE], ids=["default", "kube"])
def test_rendered_rules_pass_promtool_check(tmp_path, config):
    for name, text in render(config).items():
        (tmp_path / name).write_text(text)
    result = promtool("check", "rules", *(str(tmp_path / name) for name in render(config)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_cli_writes_a_rendered_set(tmp_path):
    assert generate.main(["--set", 'job_selector=job="x"', "--set", "cluster_label=site", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "sollol-alerts.yml").read_text()
    assert 'sollol_coordinator_up{job="x"}' in text and "by (site, instance, coordinator)" in text
    with pytest.raises(SystemExit):
        generate.main(["--set", "nonsense=1"])
    assert shutil.which("promtool")


def test_description_queries_are_scoped_to_the_alert_s_own_job_cluster_and_instance():
    text = render(KUBE)["sollol-alerts.yml"]
    descriptions = "\n".join(rule["annotations"]["description"] for group in yaml.safe_load(text)["groups"] for rule in group["rules"])
    # the exporter's series by job, cluster and instance; the SLOs' recorded budget (no job label) by cluster and instance
    assert descriptions.count('{job=\\"monitoring/sollol-exporter\\",k8s_cluster=\'%s\',instance=\'%s\'') == 4
    assert descriptions.count(",k8s_cluster='%s',instance='%s'") == 4 + 2 * len(KUBE.slos)
    assert descriptions.count("$labels.k8s_cluster $labels.instance") == 4 + 2 * len(KUBE.slos)


def test_a_runbook_base_with_an_anchor_is_refused_and_spaces_are_encoded():
    with pytest.raises(ValueError, match="#"):
        Config(runbook_url_base="https://wiki.example.org/sollol#top")
    assert Config(runbook_url_base="https://wiki.example.org/run books").runbook("SollolWatchdog") == \
        "https://wiki.example.org/run%20books#sollolwatchdog"
