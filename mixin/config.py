"""The one place for everything a user's Prometheus setup may name differently, and every alert threshold.

Like kubernetes-mixin's `_config`: rules (`mixin/rules.py`) and dashboards (`mixin/dashboards/`) are generated
from a `Config`, every selector written with its `sel` or `series`; the defaults reproduce the shipped stack
(`prometheus/prometheus.yml`: job "sollol", a `cluster` target label). Render for another setup with, e.g.,

    .venv/bin/python -m mixin.generate --set job_selector='job="monitoring/sollol-exporter"' --set cluster_label=k8s_cluster --out /tmp/mine
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from urllib.parse import quote

PROJECT_URL = "https://github.com/sollol-exporter/sollol-exporter"
# The bucket bounds of sollol_request_duration_seconds and sollol_coordinator_request_duration_seconds: a latency
# SLO counts requests above one of them (a test keeps this list equal to the exporter's).
HISTOGRAM_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


@dataclass(frozen=True)
class Alert:
    """Threshold and `for:` of one alert; `why` is written next to `for:` in the generated rules."""

    for_: str
    why: str
    threshold: float | None = None


@dataclass(frozen=True)
class Slo:
    """One service level objective: the share of good events promised over the config's SLO window, the latency
    threshold where the SLI counts slow requests (seconds; a bucket bound of the exporter's histograms), and why."""

    objective: float
    why: str
    threshold: float | None = None


@dataclass(frozen=True)
class BurnWindow:
    """A multiwindow condition: the error ratio over both windows above `factor` times the error budget."""

    short: str
    long: str
    factor: float


@dataclass(frozen=True)
class BurnAlert:
    """One level of burn-rate alerts (the workbook's page or ticket): its windows, severity and `for:`."""

    suffix: str            # alert name = Sollol<SLO in CamelCase><suffix>
    severity: str          # the mixin's severity: critical pages, warning opens a ticket
    sloth_severity: str    # Sloth's name for the level: page or ticket
    windows: tuple[BurnWindow, ...]
    for_: str
    why: str


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
    # Requests/s (3 a minute) an SLO's node, model, coordinator or application needs over a burn alert's short window,
    # and a node over 5 minutes for SollolNodeErrorRatioHigh: below it one failure among a handful of requests is a
    # huge ratio, not a burning budget.
    min_request_rate: float = 0.05
    # SLOs: one per family, each over `slo_window` (Sloth's labels: sloth_service, sloth_slo, sloth_id).
    slos: dict[str, Slo] = field(default_factory=lambda: dict(SLOS))
    slo_window: str = "30d"
    slo_service: str = "sollol"
    # The SLO window's ratio reads every sample of the window; every 2m is plenty for a 30-day figure and stays
    # under Prometheus' 5m lookback, so the recorded series never goes stale between evaluations.
    slo_window_interval: str = "2m"
    burn_alerts: tuple[BurnAlert, ...] = field(default_factory=lambda: BURN_ALERTS)
    # SollolNodeErrorRatioHigh and SollolModelLatencyHigh: fixed thresholds over 5 minutes, off by default since the
    # node-availability and model-latency SLOs cover the same failures with budget-aware windows (both on = two
    # alerts for one fault, and the fixed ones are the blip-sensitive, leak-blind kind the SLOs replace).
    fixed_request_alerts: bool = False

    def __post_init__(self) -> None:
        if "#" in self.runbook_url_base:
            raise ValueError("runbook_url_base: no '#' (each alert adds its own anchor)")
        if not re.fullmatch(r"[1-9][0-9]*d", self.slo_window) or int(self.slo_window[:-1]) < 7:
            raise ValueError(f"slo_window: a number of days, at least 7 (longer than the 3-day ticket window), such as 30d "
                             f"or 28d, not {self.slo_window!r}")
        for name, slo in self.slos.items():
            if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
                raise ValueError(f"slos: {name!r} is not a Sloth SLO name (lower case, digits and dashes)")
            if not 0 < slo.objective < 1:
                raise ValueError(f"slos.{name}: objective {slo.objective} is not between 0 and 1")
            if slo.threshold is not None and slo.threshold not in HISTOGRAM_BUCKETS:
                raise ValueError(f"slos.{name}: threshold {slo.threshold:g}s is not a bucket bound of the exporter's "
                                 f"histograms ({', '.join(f'{b:g}' for b in HISTOGRAM_BUCKETS)})")
            fastest = max(w.factor for level in self.burn_alerts for w in level.windows)
            if fastest * (1 - slo.objective) >= 1:
                raise ValueError(f"slos.{name}: objective {slo.objective} leaves an error budget of {1 - slo.objective:g}; "
                                 f"a {fastest:g}x burn would need more than every request to fail")

    def alert(self, name: str) -> Alert:
        for level in self.burn_alerts:
            if name.endswith(level.suffix) and name.removesuffix(level.suffix) in {slo_alert_stem(s) for s in self.slos}:
                return Alert(level.for_, level.why)
        return self.alerts[name]

    @property
    def slo_days(self) -> int:
        return int(self.slo_window[:-1])

    def runbook(self, alert_name: str) -> str:
        return f"{quote(self.runbook_url_base, safe=':/?&=%@+,;~')}#{alert_name.lower()}"

    def template_matchers(self) -> str:
        """The job selector, then this alert's cluster and instance, as label matchers inside a Go-template string
        literal (for `query` calls in descriptions); continue with `,name='%s'` and pass the values after."""
        job = self.job_selector.replace("\\", "\\\\").replace('"', '\\"')
        return f"{job},{self.cluster_label}='%s',{self.instance_label}='%s'"

    def template_values(self) -> str:
        return f"$labels.{self.cluster_label} $labels.{self.instance_label}"

    def sel(self, *matchers: str) -> str:
        """The label matchers of one selector: the job's, then the given ones."""
        return ",".join(part for part in (self.job_selector, *matchers) if part)

    def series(self, name: str, *matchers: str) -> str:
        """A selector of the exporter's series: `name{<job selector>,<matchers>}`; with no name, `{...}` alone."""
        return f"{name}{{{self.sel(*matchers)}}}"

    def by(self, *labels: str) -> str:
        """`cluster, instance, <labels>` with the configured label names."""
        return ", ".join((self.cluster_label, self.instance_label, *labels))

    def replace(self, **changes) -> Config:
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
    "SollolRouterMetadataStale": Alert("5m", "OllamaPool rewrites the key every 5 s; a timestamp past the threshold means its publisher loop stopped",
                                       threshold=120),
    "SollolApplicationStoppedHeartbeating": Alert("1m", "the dashboard drops an app 60 s after its last heartbeat; the exporter then reports up 0"),
    "SollolNodeErrorRatioHigh": Alert(
        "10m", "a node restart or a model load costs a few errors, not ten minutes of them", threshold=0.05),
    "SollolModelLatencyHigh": Alert(
        "15m", "unary requests only (a stream's latency is its whole generation); interactive use is broken, so 15m of it, "
        "not one slow batch", threshold=30),
    "SollolCoordinatorQueueBackingUp": Alert("10m", "llama-server defers a request when every slot is busy; 10m of it means it cannot keep up"),
    "SollolEventsSilent": Alert("10m", "SOLLOL's own counters and the events cover the same 10 minutes"),
    "SollolEventsSubscriptionLost": Alert("0m", "a lost subscription is a fact at once: the hour's request figures are short"),
    "SollolExporterDown": Alert("2m", "eight failed scrapes"),
    "SollolExporterAbsent": Alert("5m", "a target missing for 5 minutes is a configuration change, not a restart"),
    "SollolExporterConfigReloadFailed": Alert(
        "5m", "a config reloader that signals on a half-written file is followed by a good reload within seconds; 5m of it "
        "means the file on disk is bad"),
    "SollolExporterCollectorFailing": Alert("10m", "one source unreadable (bad data, wrong type, unreachable dashboard); the exporter logs the cause"),
}


def slo_alert_stem(slo_name: str) -> str:
    """"node-availability" -> "SollolNodeAvailability": the burn alerts' names start with it."""
    return "Sollol" + "".join(part.capitalize() for part in slo_name.split("-"))


# The SLOs shipped, by Sloth SLO name; what each one counts is defined in mixin/slos.py.
SLOS: dict[str, Slo] = {
    "node-availability": Slo(
        0.99, "an attempt that fails is retried on the next node, so 1% failed attempts per node is what a few GPU boxes "
        "keep in a month of model loads, restarts and out-of-memory errors without users noticing"),
    "model-latency": Slo(
        0.99, "30 s, as the fixed SollolModelLatencyHigh had it: a unary answer later than that is a broken interactive "
        "use; 1 in 100 may be a long generation", threshold=30.0),
    "coordinator-availability": Slo(
        0.99, "llama-server over RPC workers has no retry: every failure reaches the user; 1% leaves room for a restart "
        "or a lost worker now and then"),
    "coordinator-latency": Slo(
        0.99, "distributed inference crosses the network for every token, so twice the Ollama threshold", threshold=60.0),
    "application-availability": Slo(
        0.995, "SOLLOL's own final outcome, after its retries on other nodes: what the application's users saw, so "
        "stricter than a single node's"),
}

# The SRE workbook's multiwindow, multi-burn-rate alerts for a 30-day window (chapter 5, "Alerting on SLOs"): a page when 2%
# of the budget goes in an hour or 5% in six hours, a ticket when 10% goes in a day or 10% in three days.
BURN_ALERTS: tuple[BurnAlert, ...] = (
    BurnAlert("FastBurn", "critical", "page", (BurnWindow("5m", "1h", 14.4), BurnWindow("30m", "6h", 6.0)), "2m",
              "the short window already confirms that the burn is still going on; 2m rides out a single evaluation that "
              "a burst of failures pushes over the line"),
    BurnAlert("SlowBurn", "warning", "ticket", (BurnWindow("2h", "1d", 3.0), BurnWindow("6h", "3d", 1.0)), "15m",
              "a ticket is read in working hours; 15m keeps a ratio that hovers at the line from opening and closing one"),
)
