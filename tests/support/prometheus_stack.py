"""Real Prometheus and Alertmanager (Debian packages) on loopback, fed test-only copies of the shipped configs.

The copies change only what a test must: addresses, intervals, Alertmanager's waits, and `for:` durations; the
rules themselves are the shipped ones.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import requests
import yaml

from tests.support.net import free_port, stop_process, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
PROMETHEUS_DIR = ROOT / "prometheus"


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(f"{names[0]} is not installed (the test command installs it with apt)")


def copy_rules(target: Path, for_duration: str) -> list[str]:
    target.mkdir(parents=True, exist_ok=True)
    files = []
    for source in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
        doc = yaml.safe_load(source.read_text())
        for group in doc["groups"]:
            group["interval"] = "1s"
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = for_duration
        path = target / source.name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        files.append(str(path))
    return files


class _Server:
    url: str
    process: subprocess.Popen

    def _ready(self) -> bool:
        try:
            return requests.get(self.url + "/-/ready", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


class Alertmanager(_Server):
    def __init__(self, workdir: Path, webhook_url: str):
        self.port = free_port()
        config = yaml.safe_load((PROMETHEUS_DIR / "alertmanager" / "alertmanager.yml").read_text())
        config["route"].update({"group_wait": "1s", "group_interval": "1s"})
        for route in config["route"].get("routes", []):
            route.pop("group_wait", None)
            route.pop("group_interval", None)
        for receiver in config["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = webhook_url + "/" + hook["url"].rsplit("/", 1)[1]
        config["templates"] = [str(PROMETHEUS_DIR / "alertmanager" / "templates" / "*.tmpl")]
        path = workdir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "alertmanager.log", "wb")
        self.process = subprocess.Popen(
            [_binary("prometheus-alertmanager", "alertmanager"), f"--config.file={path}", f"--storage.path={workdir / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, 30, what="alertmanager start")


class Prometheus(_Server):
    """The shipped prometheus.yml with test addresses and intervals; subclasses write their own config and `_launch`."""

    def __init__(self, workdir: Path, exporter_address: str, alertmanager_address: str, scrape_interval: str = "2s",
                 for_duration: str = "4s"):
        self.port = free_port()
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        config["global"].update({"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval, "evaluation_interval": "1s"})
        config["rule_files"] = copy_rules(workdir / "rules", for_duration)
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager_address]
        for job in config["scrape_configs"]:
            target = exporter_address if job["job_name"] == "sollol" else f"127.0.0.1:{self.port}"
            job["static_configs"][0]["targets"] = [target]
        # alerts evaluated before Alertmanager is discovered are dropped; resend soon instead of after 1m
        self._launch(workdir, config, "--rules.alert.resend-delay=2s")

    def _launch(self, workdir: Path, config: dict, *flags: str) -> None:
        """Write `config`, start Prometheus on self.port with it, wait until it is ready."""
        path = workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [_binary("prometheus"), f"--config.file={path}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", *flags],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, 30, what="prometheus start")

    def query(self, expr: str) -> list[dict]:
        reply = requests.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10).json()
        assert reply["status"] == "success", reply
        return reply["data"]["result"]
