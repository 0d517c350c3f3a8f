"""Running the real exporter (as a subprocess, through its console script) and reading what it serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.net import free_port, stop_process, wait_for


def parse(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted label items): value} for a Prometheus text exposition."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, metric, /, **labels):
    return samples.get((metric, tuple(sorted(labels.items()))))


def series(samples, name):
    return {labels: v for (n, labels), v in samples.items() if n == name}


def one_hot(samples, metric, /, **labels) -> str | None:
    """The state whose series is 1."""
    hot = [dict(found)["state"] for found, v in series(samples, metric).items() if v == 1 and all(dict(found).get(k) == x for k, x in labels.items())]
    return hot[0] if len(hot) == 1 else None


class ExporterProcess:
    def __init__(self, config: dict | None, workdir: Path, extra_args=(), env=None):
        """`config` None: no --config.file, as a new user starts it (defaults plus SOLLOL_* variables in `env`)."""
        self.port = free_port()
        self.config_path = Path(workdir) / f"exporter-{self.port}.yml"
        if config is not None:
            self.write_config(config)
        self.log_path = Path(workdir) / f"exporter-{self.port}.log"
        self.log = open(self.log_path, "wb")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SOLLOL_")}
        environment.update(env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sollol_exporter", *(["--config.file", str(self.config_path)] if config is not None else []),
             "--web.listen-address", f"127.0.0.1:{self.port}", *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, env=environment,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(self._healthy, 20, what="exporter start")

    def write_config(self, config: dict) -> None:
        self.config_path.write_text(yaml.safe_dump(config))

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"exporter exited: {self.read_log()}")
        try:
            return requests.get(self.url + "/-/healthy", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def scrape_text(self, timeout: float | None = None, headers: dict | None = None) -> requests.Response:
        headers = dict(headers or {})
        if timeout is not None:
            headers["X-Prometheus-Scrape-Timeout-Seconds"] = str(timeout)
        return requests.get(self.url + "/metrics", headers=headers, timeout=30)

    def scrape(self, timeout: float | None = None) -> dict:
        reply = self.scrape_text(timeout)
        assert reply.status_code == 200, reply.text[:500]
        return parse(reply.text)

    def read_log(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def reload(self) -> None:
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()
