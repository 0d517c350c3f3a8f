"""A real Prometheus set up as another user's would be: its scrape job and cluster target label named as a mixin
`Config` says (e.g. job "sollol-kube", label `k8s_cluster`), with the recording rules rendered for that config by
mixin/rules.py. Only the recording rules are loaded (no Alertmanager): this one serves panel queries."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mixin.config import Config
from mixin.rules import RECORDING_FILE, render
from tests.support.net import free_port
from tests.support.prometheus_stack import Prometheus


def job_name(config: Config) -> str:
    """The scrape job a `job="..."` selector matches."""
    found = re.fullmatch(r'job="([^"]+)"', config.job_selector)
    assert found, f"not a plain job selector: {config.job_selector}"
    return found.group(1)


class RenamedPrometheus(Prometheus):
    def __init__(self, workdir: Path, exporter_address: str, config: Config, cluster: str, scrape_interval: str = "1s"):
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        rules = yaml.safe_load(render(config)[RECORDING_FILE])
        for group in rules["groups"]:
            group["interval"] = "1s"
        rules_path = workdir / RECORDING_FILE
        rules_path.write_text(yaml.safe_dump(rules, sort_keys=False))
        settings = {
            "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval, "evaluation_interval": "1s"},
            "rule_files": [str(rules_path)],
            "scrape_configs": [{"job_name": job_name(config),
                                "static_configs": [{"targets": [exporter_address], "labels": {config.cluster_label: cluster}}]}],
        }
        self._launch(workdir, settings)
