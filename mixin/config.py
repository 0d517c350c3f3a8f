"""The one place for everything a user's Prometheus setup may name differently, and every alert threshold.

Like kubernetes-mixin's `_config`: rules (`mixin/rules.py`) and dashboards (`grafana/generate.py`) are generated
from a `Config`; the defaults reproduce the shipped stack (`prometheus/prometheus.yml`: job "sollol", a `cluster`
target label). Render for another setup with, e.g.,

    .venv/bin/python -m mixin.generate --set job_selector='job="monitoring/sollol-exporter"' --set cluster_label=k8s_cluster --out /tmp/mine
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from urllib.parse import quote

PROJECT_URL = "https://github.com/sollol-exporter/sollol-exporter"


@dataclass(frozen=True)
class Alert:
    """Threshold and `for:` of one alert; `why` is written next to `for:` in the generated rules."""

    for_: str
    why: str
    threshold: float | None = None


@dataclass(frozen=True)
class Config:
    # Selectors and label names of the user's Prometheus.
    job_selector: str = 'job="sollol"'            # matches the exporter's scrape job (a ServiceMonitor names its own)
    cluster_label: str = "cluster"                 # target label that tells SOLLOL clusters apart
    instance_label: str = "instance"               # target label of one exporter
    # Where alert receivers link to: one section per alert, anchored by the alert name in lower case.
    runbook_url_base: str = PROJECT_URL + "/blob/main/docs/runbooks.md"
    # Dashboards.
    dashboard_tags: tuple[str, ...] = ("sollol",)
    dashboard_refresh: str = "30s"
    alerts: dict[str, Alert] = field(default_factory=lambda: dict(ALERTS))
    min_request_rate: float = 0.05  # requests/s a node needs before its error ratio can page (3 a minute)

    def __post_init__(self) -> None:
        if "#" in self.runbook_url_base:
            raise ValueError("runbook_url_base: no '#' (each alert adds its own anchor)")

    def alert(self, name: str) -> Alert:
        return self.alerts[name]

    def runbook(self, alert_name: str) -> str:
        return f"{quote(self.runbook_url_base, safe=':/?&=%@+,;~')}#{alert_name.lower()}"

    def template_matchers(self) -> str:
        """The job selector, then this alert's cluster and instance, as label matchers inside a Go-template string
        literal (for `query` calls in descriptions); continue with `,name='%s'` and pass the values after."""
        job = self.job_selector.replace("\\", "\\\\").replace('"', '\\"')
        return f"{job},{self.cluster_label}='%s',{self.instance_label}='%s'"

    def template_values(self) -> str:
        return f"$labels.{self.cluster_label} $labels.{self.instance_label}"

    def sel(self, matchers: str = "") -> str:
        """The label matchers of one selector: the job's, then the given ones."""
        return ",".join(part for part in (self.job_selector, matchers) if part)

    def by(self, *labels: str) -> str:
        """`cluster, instance, <labels>` with the configured label names."""
        return ", ".join((self.cluster_label, self.instance_label, *labels))

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)


# Every threshold and `for:` window in one table; the reasons end up as comments in the generated rule files.
ALERTS: dict[str, Alert] = {
    "SollolRpcBackendDown": Alert("2m", "a worker restart takes seconds; eight failed probes are not a blip"),
    "SollolRpcBackendsAllDown": Alert("1m", "distributed inference cannot run at all: page quickly"),
    "SollolRpcBackendVersionSkew": Alert(
        "15m", "a rolling upgrade (workers first, then the coordinator) passes through skew for minutes; 15m of it means "
        "one side was left behind"),
    "SollolCoordinatorDown": Alert("1m", "four scrapes; llama-server restarts take seconds"),
    "SollolCoordinatorStuckLoading": Alert(
        "10m", "big models take minutes to reach the workers; 10m is past any normal load and catches a worker that "
        "another client holds (llama-server waits for it forever)"),
    "SollolCoordinatorStalled": Alert("2m", "a long prompt can block the loop briefly; minutes mean it is stuck (typically on a hung worker)"),
    "SollolCoordinatorMetricsDisabled": Alert("15m", "a configuration fact, not an outage: a restart without the flag is not noisy"),
    "SollolOllamaNodeDown": Alert("2m", "SOLLOL routes around a dead node, so warning; 2m rides out an Ollama restart"),
    "SollolOllamaNodesAllDown": Alert("2m", "SOLLOL has no node to send a request to; 2m, as for one node, rides out an Ollama restart"),
    "SollolOllamaNodeFalselyAvailable": Alert("5m", "SOLLOL rechecks a node only every 100 requests and keeps sending traffic to a dead one"),
    "SollolOllamaNodeFalselyUnavailable": Alert("10m", "capacity left unused; SOLLOL only rechecks after more traffic"),
    # Ollama and llama.cpp fill VRAM by design, so low free memory alone is no alert: only with failing requests.
    "SollolGpuMemoryNearlyFull": Alert(
        "5m", "a failed request stays in the 10-minute window, so this fires 5 minutes into failures on a full GPU and "
        "clears 10 minutes after the last one", threshold=0.05),
    "SollolGpuTelemetryStale": Alert("1m", "gpu_reporter writes every 5 s with a 120 s TTL; nothing new for the threshold means it stopped", threshold=180),
    "SollolRedisDown": Alert("2m", "without Redis the exporter loses metadata, GPU telemetry and worker discovery"),
    "SollolRouterMetadataStale": Alert("5m", "OllamaPool rewrites the key every 5 s; a timestamp past the threshold means its publisher loop stopped", threshold=120),
    "SollolApplicationStoppedHeartbeating": Alert("1m", "the dashboard drops an app 60 s after its last heartbeat; the exporter then reports up 0"),
    "SollolNodeErrorRatioHigh": Alert(
        "10m", "a node restart or a model load costs a few errors, not ten minutes of them", threshold=0.05),
    "SollolModelLatencyHigh": Alert(
        "15m", "unary requests only (a stream's latency is its whole generation); interactive use is broken, so 15m of it, "
        "not one slow batch", threshold=30),
    "SollolCoordinatorQueueBackingUp": Alert("10m", "llama-server defers a request when every slot is busy; 10m of it means it cannot keep up"),
    "SollolEventsSilent": Alert("10m", "SOLLOL's own counters and the events cover the same 10 minutes"),
    "SollolExporterDown": Alert("2m", "eight failed scrapes"),
    "SollolExporterAbsent": Alert("5m", "a target missing for 5 minutes is a configuration change, not a restart"),
    "SollolExporterConfigReloadFailed": Alert(
        "5m", "a config reloader that signals on a half-written file is followed by a good reload within seconds; 5m of it "
        "means the file on disk is bad"),
    "SollolExporterCollectorFailing": Alert("10m", "one source unreadable (bad data, wrong type, unreachable dashboard); the exporter logs the cause"),
}
