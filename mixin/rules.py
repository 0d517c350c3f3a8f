"""Alert and recording rules of the mixin, rendered from a Config into Prometheus rule files.

Each alert keeps a constant summary (the headline a pager shows) and puts the specifics in its description; each
`for:` carries its reason as a comment, taken from the config's threshold table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mixin import slos
from mixin.config import Config

ALERTS_FILE = "sollol-alerts.yml"
RECORDING_FILE = "sollol-recording.yml"
DOWN_STATES = "refused|unreachable|dns_error|not_serving|error"


@dataclass(frozen=True)
class AlertRule:
    name: str
    severity: str
    what: str  # comment: what the expression catches
    expr: str
    summary: str
    description: str
    labels: tuple[tuple[str, str], ...] = ()  # besides severity


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str
    labels: tuple[tuple[str, str], ...] = ()


def alert_groups(c: Config) -> list[tuple[str, str, list[AlertRule]]]:
    """(group name, group comment, rules)."""
    by, th = c.by, (lambda name: c.alert(name).threshold)
    inst = c.instance_label
    return [
        ("sollol.workers", "", [
            AlertRule(
                "SollolRpcBackendDown", "critical",
                "refused, unreachable, dns_error, not_serving or error. Never \"busy\": a worker held by its coordinator is doing its job.",
                f"""(
  max by ({by("backend")}) ({c.series("sollol_rpc_backend_state", f'state=~"{DOWN_STATES}"')} == 1)
  * on ({by("backend")}) group_left (coordinator)
  max by ({by("backend", "coordinator")}) ({c.series("sollol_rpc_backend_coordinator_info")})
)
or
(
  max by ({by("backend")}) ({c.series("sollol_rpc_backend_state", f'state=~"{DOWN_STATES}"')} == 1)
  unless on ({by("backend")}) {c.series("sollol_rpc_backend_coordinator_info")}
)""",
                "An RPC worker is down.",
                "rpc-server {{ $labels.backend }}{{ with $labels.coordinator }} of coordinator {{ . }}{{ end }} has been down for "
                + _minutes(c, "SollolRpcBackendDown")
                + " (state {{ with printf \"sollol_rpc_backend_state{" + c.template_matchers() + ",backend='%s'} == 1\" "
                + c.template_values() + " $labels.backend | query }}{{ . | first | label \"state\" }}{{ end }})."
                " llama-server aborts at its next request that needs this worker.",
            ),
            AlertRule(
                "SollolRpcBackendsAllDown", "critical", "every worker of one coordinator is down.",
                f"sum by ({by('coordinator')}) ({c.series('sollol_rpc_backend_coordinator_info')} * on ({by('backend')}) "
                f"group_left {c.series('sollol_rpc_backend_up')}) == 0",
                "All RPC workers of a coordinator are down.",
                "None of the rpc-server workers that {{ $labels.coordinator }} drives has answered for " + _minutes(c, "SollolRpcBackendsAllDown") + ".",
            ),
            AlertRule(
                "SollolRpcBackendVersionSkew", "warning",
                "the coordinator's build refuses the worker's RPC protocol (another major version, or a newer minor one). Known only "
                "where the ggml handshake runs and the coordinator reports its build.",
                f"{c.series('sollol_rpc_backend_version_skew')} == 1",
                "A coordinator and its RPC worker speak incompatible protocols.",
                "rpc-server {{ $labels.backend }} speaks RPC protocol "
                + _query_label(c, "sollol_rpc_backend_protocol_info", "backend", "version")
                + ", which llama-server {{ $labels.coordinator }} (build "
                + _query_label(c, "sollol_coordinator_build_info", "coordinator", "build")
                + ") refuses: its next start or model load with this worker fails.",
            ),
        ]),
        ("sollol.coordinators", "", [
            AlertRule(
                "SollolCoordinatorDown", "critical", "hung or unreachable (or an unexpected answer).",
                f"{c.series('sollol_coordinator_up')} == 0",
                "A llama.cpp coordinator is down.",
                "llama-server {{ $labels.coordinator }} has not answered /health for " + _minutes(c, "SollolCoordinatorDown") + ".",
            ),
            AlertRule(
                "SollolCoordinatorStuckLoading", "warning", "still answering 503 \"Loading model\".",
                c.series("sollol_coordinator_state", 'state="loading"') + " == 1",
                "A coordinator is stuck loading its model.",
                "llama-server {{ $labels.coordinator }} still answers 503 \"Loading model\" after " + _minutes(c, "SollolCoordinatorStuckLoading") + ".",
            ),
            AlertRule(
                "SollolCoordinatorStalled", "critical", "/health answers but /metrics, which goes through the inference loop, times out.",
                c.series("sollol_coordinator_state", 'state="stalled"') + " == 1",
                "A coordinator's inference loop is stuck.",
                "llama-server {{ $labels.coordinator }} has answered /health while /metrics timed out for " + _minutes(c, "SollolCoordinatorStalled") + ".",
            ),
            AlertRule(
                "SollolCoordinatorMetricsDisabled", "info", "llama-server answers 501 on /metrics.",
                f"{c.series('sollol_coordinator_metrics_enabled')} == 0",
                "A coordinator serves no /metrics.",
                "llama-server {{ $labels.coordinator }} answers 501 on /metrics; start it with --metrics to get token and queue figures.",
            ),
        ]),
        ("sollol.ollama", "", [
            AlertRule(
                "SollolOllamaNodeDown", "warning", "Ollama does not answer GET /.",
                f"{c.series('sollol_ollama_node_up')} == 0",
                "An Ollama node is down.",
                "Ollama on {{ $labels.node }} has not answered GET / for " + _minutes(c, "SollolOllamaNodeDown") + ".",
            ),
            AlertRule(
                "SollolOllamaNodesAllDown", "critical", "no Ollama node the exporter probes answers. Only where there are nodes.",
                f"""count by ({by()}) ({c.series("sollol_ollama_node_up")})
unless on ({by()}) ({c.series("sollol_ollama_node_up")} == 1)""",
                "All Ollama nodes are down.",
                "None of the {{ $value }} Ollama nodes that {{ $labels." + inst + " }} probes has answered GET / for "
                + _minutes(c, "SollolOllamaNodesAllDown") + "; SOLLOL has nowhere to send a request.",
            ),
            AlertRule(
                "SollolOllamaNodeFalselyAvailable", "warning", "SOLLOL marks a node available that the probe finds down.",
                f"({c.series('sollol_ollama_node_available')} == 1) and on ({by('node')}) ({c.series('sollol_ollama_node_up')} == 0)",
                "SOLLOL routes to an Ollama node that is down.",
                "SOLLOL marks {{ $labels.node }} available while the exporter's probe has failed for " + _minutes(c, "SollolOllamaNodeFalselyAvailable") + ".",
            ),
            AlertRule(
                "SollolOllamaNodeFalselyUnavailable", "info", "SOLLOL marks a node unavailable that answers the probe.",
                f"({c.series('sollol_ollama_node_available')} == 0) and on ({by('node')}) ({c.series('sollol_ollama_node_up')} == 1)",
                "SOLLOL does not use an Ollama node that is up.",
                "SOLLOL marks {{ $labels.node }} unavailable while it has answered the exporter for " + _minutes(c, "SollolOllamaNodeFalselyUnavailable") + ".",
            ),
        ]),
        ("sollol.gpus", "", [
            AlertRule(
                "SollolGpuMemoryNearlyFull", "warning",
                f"under {th('SollolGpuMemoryNearlyFull'):.0%} of a GPU's memory free while requests to its node fail (HTTP 5xx in "
                "SOLLOL's events, or SOLLOL's own failure count) within 10 minutes. Ollama keeps models loaded and llama.cpp "
                "allocates what it can, so a full GPU alone is normal; full and failing means a model cannot be loaded.",
                f"""(
  {c.series("sollol_gpu_memory_free_bytes")} / {c.series("sollol_gpu_memory_total_bytes")} < {_number(th("SollolGpuMemoryNearlyFull"))}
)
and on ({by("node")})
(
  sum by ({by("node")}) (increase({c.series("sollol_request_errors_total", 'reason="http_5xx"')}[10m])) > 0
  or
  sum by ({by("node")}) (increase({c.series("sollol_ollama_node_failed_requests_total")}[10m])) > 0
)""",
                "A GPU is out of memory and its node fails requests.",
                "GPU {{ $labels.gpu }} on {{ $labels.node }} has {{ $value | humanizePercentage }} of its memory free and requests "
                "to {{ $labels.node }} have failed in the last 10 minutes: a model probably cannot be loaded there.",
            ),
            AlertRule(
                "SollolGpuTelemetryStale", "warning",
                "no GPU report for the threshold; max_over_time keeps the alert alive after the key (and its series) expired.",
                f"time() - max by ({by('node')}) (max_over_time({c.series('sollol_gpu_report_timestamp_seconds')}[1h])) "
                f"> {_number(th('SollolGpuTelemetryStale'))}",
                "GPU telemetry has stopped.",
                "The gpu_reporter of {{ $labels.node }} last wrote {{ $value | humanizeDuration }} ago.",
            ),
        ]),
        ("sollol.sources", "", [
            AlertRule(
                "SollolRedisDown", "critical", "the exporter cannot reach SOLLOL's Redis.",
                f"{c.series('sollol_redis_up')} == 0",
                "SOLLOL's Redis is unreachable.",
                "The exporter {{ $labels." + inst + " }} has not reached SOLLOL's Redis for " + _minutes(c, "SollolRedisDown") + ".",
            ),
            AlertRule(
                "SollolRouterMetadataStale", "warning", "OllamaPool's timestamped metadata is old (other writers have no clock).",
                f"""{c.series("sollol_metadata_age_seconds")} > {_number(th("SollolRouterMetadataStale"))}
and on ({by()}) ({c.series("sollol_metadata_info", 'variant="ollama_pool"')} == 1)""",
                "SOLLOL's router metadata is stale.",
                "sollol:router:metadata was last written {{ $value | humanizeDuration }} ago by OllamaPool, which writes every 5 seconds.",
            ),
            AlertRule(
                "SollolApplicationStoppedHeartbeating", "warning", "an app vanished from the dashboard's registry.",
                f"{c.series('sollol_application_up')} == 0",
                "A SOLLOL application stopped heartbeating.",
                "{{ $labels.app }} ({{ $labels.router_type }}) is no longer registered with the SOLLOL dashboard.",
            ),
        ]),
        ("sollol.requests", "Request-level alerts from SOLLOL's activity events, read through the recording rules.", [
            *(_fixed_request_alerts(c) if c.fixed_request_alerts else []),
            AlertRule(
                "SollolCoordinatorQueueBackingUp", "warning", "llama-server has requests waiting for a slot.",
                f"{c.series('sollol_coordinator_requests_deferred')} > 0",
                "A coordinator's request queue is backing up.",
                "llama-server {{ $labels.coordinator }} has had {{ $value }} requests waiting for a slot for "
                + _minutes(c, "SollolCoordinatorQueueBackingUp") + ".",
            ),
            AlertRule(
                "SollolEventsSubscriptionLost", "info",
                "Redis dropped the exporter's subscription (a burst past its output buffer, a restart): events published "
                "until it subscribed again were not counted, so this hour's request rates, ratios and SLO figures are short.",
                f"increase({c.series('sollol_events_subscription_losses_total')}[1h]) > 0",
                "Activity events were lost.",
                "{{ $labels." + inst + " }} lost its subscription to SOLLOL's event channels {{ $value | humanize }} times in the "
                "last hour; request figures for that hour are short.",
            ),
            AlertRule(
                "SollolEventsSilent", "warning",
                "SOLLOL's own request counters grow while no activity event arrives: the subscriber is broken, or SOLLOL stopped "
                "publishing (another Redis, SOLLOL_REDIS_URL unset). Only where the exporter subscribes at all.",
                f"""(
  sum by ({by()}) (increase({c.series("sollol_ollama_node_requests_total")}[10m])) > 0
  or
  sum by ({by()}) (increase({c.series("sollol_router_requests_total")}[10m])) > 0
)
unless on ({by()}) (sum by ({by()}) (increase({c.series("sollol_events_received_total")}[10m])) > 0)
and on ({by()}) {c.series("sollol_events_subscribed")}""",
                "SOLLOL's activity events have gone silent.",
                "SOLLOL handled requests in the last 10 minutes but {{ $labels." + inst + " }} received no activity event (subscribed: "
                "{{ with printf \"sollol_events_subscribed{" + c.template_matchers() + "}\" " + c.template_values()
                + " | query }}{{ . | first | value }}{{ end }}).",
            ),
        ]),
        ("sollol.slos", "Multiwindow, multi-burn-rate alerts on the SLOs of mixin/config.py (the SRE workbook's windows and factors), "
         "read from the slo:sli_error:ratio_rate<window> recording rules.", [
            AlertRule(rule.name, rule.level.severity, rule.what, rule.expr, rule.summary, rule.description,
                      (*slos.sloth_labels(c, rule.slo), ("sloth_severity", rule.level.sloth_severity)))
            for rule in slos.burn_rules(c)
        ]),
        ("sollol.exporter", "", [
            AlertRule(
                "SollolExporterDown", "critical", "Prometheus cannot scrape the exporter.",
                f"up{{{c.job_selector}}} == 0",
                "sollol-exporter cannot be scraped.",
                "Prometheus has failed to scrape {{ $labels." + inst + " }} for " + _minutes(c, "SollolExporterDown") + "; nothing about the cluster is known.",
            ),
            AlertRule(
                "SollolExporterAbsent", "critical", "Prometheus has no target for the exporter's job.",
                f"absent(up{{{c.job_selector}}})",
                "No sollol-exporter target in Prometheus.",
                "Prometheus has had no target matching " + json.dumps(c.job_selector)[1:-1].replace('\\"', '"') + " for "
                + _minutes(c, "SollolExporterAbsent") + "; check its scrape configuration.",
            ),
            AlertRule(
                "SollolExporterConfigReloadFailed", "warning",
                "the last reload (SIGHUP, POST /-/reload) of the config or web config file failed; the previous one stays in force.",
                f"{c.series('sollol_exporter_config_last_reload_successful')} == 0",
                "sollol-exporter failed to reload its configuration.",
                "{{ $labels." + inst + " }} has run on its previous configuration for " + _minutes(c, "SollolExporterConfigReloadFailed")
                + " because the file it was told to reload is invalid; it would refuse to start with it. Its log says why.",
            ),
            AlertRule(
                "SollolExporterCollectorFailing", "warning", "one of the exporter's sources is unreadable.",
                f"{c.series('sollol_exporter_collector_success')} == 0",
                "A sollol-exporter source is unreadable.",
                "The {{ $labels.collector }} collector of {{ $labels." + inst + " }} has failed for "
                + _minutes(c, "SollolExporterCollectorFailing") + "; its log says why.",
            ),
            AlertRule(
                "SollolWatchdog", "info", "always firing: proves the whole alerting path works. Route it to a dead man's switch.",
                "vector(1)",
                "Alerting pipeline is working.",
                "This alert always fires. If it stops arriving, Prometheus or Alertmanager is broken.",
            ),
        ]),
    ]


def _fixed_request_alerts(c: Config) -> list[AlertRule]:
    """Fixed-threshold request alerts, optional (Config.fixed_request_alerts): the SLOs cover the same failures."""
    by, th = c.by, (lambda name: c.alert(name).threshold)
    return [
        AlertRule(
            "SollolNodeErrorRatioHigh", "warning",
            f"more than {th('SollolNodeErrorRatioHigh'):.0%} of a node's requests fail, at {_number(c.min_request_rate)} requests/s or more "
            "(so that one failure among three requests does not page).",
            f"""node:sollol_request_errors:ratio_rate5m > {_number(th("SollolNodeErrorRatioHigh"))}
and on ({by("node")}) node:sollol_requests:rate5m > {_number(c.min_request_rate)}""",
            "An Ollama node fails too many requests.",
            "{{ $value | humanizePercentage }} of the requests SOLLOL sent to {{ $labels.node }} failed over the last 5 minutes"
            f" (threshold {th('SollolNodeErrorRatioHigh'):.0%}).",
        ),
        AlertRule(
            "SollolModelLatencyHigh", "warning",
            f"a model's p95 latency of unary requests is over {_number(th('SollolModelLatencyHigh'))} s. Streamed requests are left "
            "out: their latency is the whole generation, long by nature.",
            f'model:sollol_request_duration_seconds:quantile_rate5m{{quantile="0.95",streaming="false"}} > {_number(th("SollolModelLatencyHigh"))}',
            "A model answers too slowly.",
            "The 95th percentile latency of unary (not streamed) requests to {{ $labels.model }} is {{ $value | humanizeDuration }}"
            f" (threshold {_number(th('SollolModelLatencyHigh'))}s).",
        ),
    ]


def recording_groups(c: Config) -> list[tuple[str, str, list[Recording]]]:
    by = c.by

    def quantiles(level: str, metric: str, labels: tuple[str, ...], qs=("0.5", "0.95", "0.99")) -> list[Recording]:
        return [
            Recording(f"{level}:{metric}:quantile_rate5m",
                      f"histogram_quantile({q}, sum by ({by(*labels, 'le')}) (rate({c.series(metric + '_bucket')}[5m])))",
                      (("quantile", q),))
            for q in qs
        ]

    # A stream's latency is its whole generation: its quantiles are kept apart (streaming="true"), never mixed
    # with those of unary requests (streaming="false"), which the latency alert and panels read by default.
    def request_quantiles(level: str) -> list[Recording]:
        return quantiles(level, "sollol_request_duration_seconds", (level, "streaming"))

    def ratio(level: str, label: str) -> Recording:
        return Recording(
            f"{level}:sollol_request_errors:ratio_rate5m",
            f"""sum by ({by(label)}) (rate({c.series("sollol_requests_total", 'outcome="error"')}[5m]))
/
sum by ({by(label)}) (rate({c.series("sollol_requests_total")}[5m]))""")

    return [
        ("sollol.recording", "", [
            Recording("coordinator:sollol_coordinator_tokens_predicted:rate5m",
                      f"sum by ({by('coordinator')}) (rate({c.series('sollol_coordinator_tokens_predicted_total')}[5m]))"),
            Recording("coordinator:sollol_coordinator_prompt_tokens:rate5m",
                      f"sum by ({by('coordinator')}) (rate({c.series('sollol_coordinator_prompt_tokens_total')}[5m]))"),
            Recording("coordinator:sollol_rpc_backend_up:ratio",
                      f"""sum by ({by("coordinator")}) ({c.series("sollol_rpc_backend_coordinator_info")} * on ({by("backend")}) """
                      f"""group_left {c.series("sollol_rpc_backend_up")})
/
count by ({by("coordinator")}) ({c.series("sollol_rpc_backend_coordinator_info")})"""),
            Recording("cluster:sollol_rpc_backend_up:ratio",
                      f"avg by ({c.cluster_label}) ({c.series('sollol_rpc_backend_up')})"),
            Recording("node:sollol_ollama_node_requests:rate5m",
                      f"sum by ({by('node')}) (rate({c.series('sollol_ollama_node_requests_total')}[5m]))"),
            Recording("node:sollol_routing_node_selections:rate5m",
                      f"sum by ({by('node')}) (rate({c.series('sollol_routing_node_selections_total')}[5m]))"),
        ]),
        ("sollol.requests.recording",
         "Request-level truth from SOLLOL's activity events: the rates, error ratios and quantiles the dashboards and alerts use.", [
            Recording("node:sollol_requests:rate5m", f"sum by ({by('node')}) (rate({c.series('sollol_requests_total')}[5m]))"),
            Recording("model:sollol_requests:rate5m", f"sum by ({by('model')}) (rate({c.series('sollol_requests_total')}[5m]))"),
            ratio("node", "node"),
            ratio("model", "model"),
            *request_quantiles("node"),
            *request_quantiles("model"),
            Recording("coordinator_model:sollol_coordinator_requests:rate5m",
                      f"sum by ({by('coordinator', 'model')}) (rate({c.series('sollol_coordinator_requests_total')}[5m]))"),
            *quantiles("coordinator_model", "sollol_coordinator_request_duration_seconds", ("coordinator", "model"), qs=("0.95",)),
            Recording("coordinator_model:sollol_coordinator_completion_tokens:rate5m",
                      f"sum by ({by('coordinator', 'model')}) (rate({c.series('sollol_coordinator_completion_tokens_total')}[5m]))"),
        ]),
    ]


def _query_label(c: Config, metric: str, label: str, wanted: str) -> str:
    """Go template: label `wanted` of `metric` for this alert's job, cluster, instance and `label`; "unknown" if none."""
    return ("{{ with printf \"" + metric + "{" + c.template_matchers() + "," + label + "='%s'} == 1\" " + c.template_values()
            + " $labels." + label + " | query }}{{ . | first | label \"" + wanted + "\" }}{{ else }}unknown{{ end }}")


def _number(value: float) -> str:
    return f"{value:g}"


def _minutes(c: Config, name: str) -> str:
    window = c.alert(name).for_
    units = {"s": "second", "m": "minute", "h": "hour"}
    amount, unit = window[:-1], window[-1]
    if unit in units and amount.isdigit():
        return f"{amount} {units[unit]}{'' if amount == '1' else 's'}"
    return window


def _scalar(value: str) -> str:
    """A YAML scalar for `value`: plain where that is safe, else double-quoted (JSON strings are valid YAML)."""
    import yaml

    plain = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    if plain.endswith("\n...") or plain.endswith("..."):
        plain = plain.rsplit("\n", 1)[0].strip()
    indicators = ("{", "[", "'", '"', "|", ">", "&", "*", "!", "%", "@", "`", "-", "?", ":", "#")
    if plain == value and not value.startswith(indicators) and ": " not in value and " #" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def _block(key: str, text: str, indent: str) -> list[str]:
    if "\n" not in text:
        return [f"{indent}{key}: {_scalar(text)}"]
    return [f"{indent}{key}: |", *(f"{indent}  {line}" if line else "" for line in text.splitlines())]


def _wrap(text: str, indent: str, width: int = 116) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(indent) + 2 + len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return [f"{indent}# {each}" for each in lines]


def _group(name: str, comment: str, interval: str | None = None) -> list[str]:
    return [f"  - name: {name}", *(_wrap(comment, "    ") if comment else []), *([f"    interval: {interval}"] if interval else []),
            "    rules:"]


def render_alerts(c: Config) -> str:
    out = [
        "# Alerts for a SOLLOL cluster, from sollol-exporter's metrics. Generated by mixin/generate.py from mixin/config.py:",
        "# edit those, not this file. Runbooks: one section per alert at the runbook_url.",
        f"# Selectors: {c.job_selector}; cluster label {c.cluster_label!r}. `for:` windows assume a 15 s scrape interval.",
        "groups:",
    ]
    for group, comment, rules in alert_groups(c):
        out += _group(group, comment)
        for rule in rules:
            out.append(f"      - alert: {rule.name}")
            out += _wrap(rule.what, "        ")
            out += _block("expr", rule.expr, "        ")
            if rule.name != "SollolWatchdog":
                settings = c.alert(rule.name)
                out += _wrap(f"for {settings.for_}: {settings.why}.", "        ")
                out.append(f"        for: {settings.for_}")
            out += ["        labels:", f"          severity: {rule.severity}",
                    *(f"          {key}: {_scalar(value)}" for key, value in rule.labels), "        annotations:"]
            out.append(f"          summary: {_scalar(rule.summary)}")
            out.append(f"          description: {_scalar(rule.description)}")
            out.append(f"          runbook_url: {_scalar(c.runbook(rule.name))}")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def render_recording(c: Config) -> str:
    out = [
        "# Recording rules for a SOLLOL cluster. Generated by mixin/generate.py from mixin/config.py: edit those, not this file.",
        "# Every rule keeps the cluster and instance labels (but the SLOs' constants, which Sloth writes without them); each",
        "# is used by a dashboard panel or an alert.",
        "groups:",
    ]
    groups = [(name, comment, None, rules) for name, comment, rules in recording_groups(c)] + slos.recording_groups(c)
    for group, comment, interval, rules in groups:
        out += _group(group, comment, interval)
        for rule in rules:
            if getattr(rule, "comment", ""):
                out += _wrap(rule.comment, "      ")
            out.append(f"      - record: {rule.record}")
            out += _block("expr", rule.expr, "        ")
            if rule.labels:
                out.append("        labels:")
                out += [f"          {key}: {_scalar(value)}" for key, value in rule.labels]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def render(c: Config) -> dict[str, str]:
    """{file name: text} of the rule files for this config."""
    return {ALERTS_FILE: render_alerts(c), RECORDING_FILE: render_recording(c)}
