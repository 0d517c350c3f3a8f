"""A real Prometheus set up as another user's would be: its scrape job and cluster target label named as a mixin
`Config` says (e.g. job "sollol-kube", label `k8s_cluster`), with the recording rules rendered for that config by
mixin/rules.py. Only the recording rules are loaded (no Alertmanager): this one serves panel queries."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from mixin.config import Config
from mixin.rules import RECORDING_FILE, render
from tests.support.net import free_port, wait_for
from tests.support.prometheus_stack import Prometheus, _binary


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
        path = workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(settings, sort_keys=False))
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [_binary("prometheus"), f"--config.file={path}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, 30, what="prometheus start")
