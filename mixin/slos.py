"""SLOs as Sloth writes them: recording rules named slo:sli_error:ratio_rate<window>, slo:objective:ratio, ... with
the sloth_service / sloth_slo / sloth_id labels (so Sloth's published Grafana dashboards work on them unchanged),
and the SRE workbook's multiwindow, multi-burn-rate alerts on top.

Each SLI keeps the label it is about (node, model, coordinator and model, application) next to the cluster and
instance labels. Unlike Sloth, the ratio over the SLO window is read from the counters themselves (as Pyrra does),
not averaged from 5-minute ratios: an average of ratios weighs an idle hour like a busy one, and one hour without
traffic (0/0) would make the whole window NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mixin.config import BurnAlert, Config, slo_alert_stem

META = ("sloth_id", "sloth_service", "sloth_slo")


Rate = Callable[[Config, str], str]  # PromQL: per-second rate over a window, per the SLI's labels (and cluster, instance)


@dataclass(frozen=True)
class Sli:
    """What one SLO counts: `total` events, and either the `bad` ones (a series that exists only once one happened)
    or the `good` ones (the bad ones are the rest)."""

    labels: tuple[str, ...]
    subject: str                # Go template naming the SLO's subject in an alert, e.g. "Ollama node {{ $labels.node }}"
    summary_subject: str        # the same, for the constant summary
    events: str                 # what the events are, for descriptions ("attempts SOLLOL sent it")
    bad_events: str             # what a bad event is ("failed", "took longer than 30s")
    total: Rate
    bad: Rate | None = None
    good: Rate | None = None


def _sum(c: Config, labels: tuple[str, ...], selector: str, window: str) -> str:
    return f"sum by ({c.by(*labels)}) (rate({selector}[{window}]))"


def le_matcher(threshold: float) -> str:
    """Matches the bucket bound as Prometheus 2 keeps it (le="10.0", as the exporter writes it) and as Prometheus 3
    normalises it (le="10"): a window that spans an upgrade holds both series, and the rates add up."""
    short = f"{threshold:g}"
    forms = [short, f"{threshold:.1f}"] if float(short).is_integer() else [short]
    return 'le=~"' + "|".join(form.replace(".", "\\\\.") for form in forms) + '"'


def _counter(metric: str, labels: tuple[str, ...], matchers: str = "") -> Rate:
    return lambda c, w: _sum(c, labels, c.series(metric, matchers), w)


def _outcomes(metric: str, labels: tuple[str, ...]) -> dict[str, Rate]:
    return {"total": _counter(metric, labels), "bad": _counter(metric, labels, 'outcome="error"')}


def _fast(histogram: str, labels: tuple[str, ...], slo: str, matchers: str = "") -> dict[str, Rate]:
    """Requests within the SLO's threshold: the bucket at the threshold, out of the histogram's count."""
    def good(c: Config, w: str) -> str:
        bound = ",".join(filter(None, (matchers, le_matcher(c.slos[slo].threshold))))
        return _sum(c, labels, c.series(f"{histogram}_bucket", bound), w)

    return {"total": _counter(f"{histogram}_count", labels, matchers), "good": good}


SLIS: dict[str, Sli] = {
    # Attempt-level: SOLLOL retries a failed request on the next node, so a node's failures are attempts that
    # failed there, whether or not another node then answered.
    "node-availability": Sli(
        ("node",), "Ollama node {{ $labels.node }}", "An Ollama node", "attempts SOLLOL sent it", "failed",
        **_outcomes("sollol_requests_total", ("node",))),
    # Successful unary requests slower than the threshold; a stream's latency is its whole generation, and failed
    # requests count against availability, not latency.
    "model-latency": Sli(
        ("model",), "Model {{ $labels.model }}", "A model", "successful unary requests for it", "took longer than {threshold}",
        **_fast("sollol_request_duration_seconds", ("model",), "model-latency", 'streaming="false"')),
    "coordinator-availability": Sli(
        ("coordinator", "model"), "llama-server {{ $labels.coordinator }} serving {{ $labels.model }}",
        "A llama.cpp coordinator", "requests SOLLOL sent it", "failed",
        **_outcomes("sollol_coordinator_requests_total", ("coordinator", "model"))),
    "coordinator-latency": Sli(
        ("coordinator", "model"), "llama-server {{ $labels.coordinator }} serving {{ $labels.model }}",
        "A llama.cpp coordinator", "successful requests SOLLOL sent it", "took longer than {threshold}",
        **_fast("sollol_coordinator_request_duration_seconds", ("coordinator", "model"), "coordinator-latency")),
    # SOLLOL's own final outcome per application (after its retries), where its router writes the counters:
    # OllamaPool and SynapticLlamas' load balancer.
    "application-availability": Sli(
        ("source",), "SOLLOL application {{ $labels.source }}", "A SOLLOL application",
        "requests it handled (SOLLOL's own count, after retries)", "failed",
        total=_counter("sollol_router_requests_total", ("source",)),
        good=_counter("sollol_router_successful_requests_total", ("source",))),
}


@dataclass(frozen=True)
class SloRule:
    record: str
    expr: str
    labels: tuple[tuple[str, str], ...]
    comment: str = ""  # written above the rule


def sloth_id(c: Config, slo: str) -> str:
    return f"{c.slo_service}-{slo}"


def sloth_labels(c: Config, slo: str) -> tuple[tuple[str, str], ...]:
    return (("sloth_id", sloth_id(c, slo)), ("sloth_service", c.slo_service), ("sloth_slo", slo))


def sloth_selector(c: Config, slo: str) -> str:
    return f'sloth_id="{sloth_id(c, slo)}",sloth_service="{c.slo_service}",sloth_slo="{slo}"'


def sli_windows(c: Config) -> list[str]:
    """Every window a burn alert reads, shortest first (5m, 30m, 1h, 2h, 6h, 1d, 3d with the workbook's)."""
    seconds = {"m": 60, "h": 3600, "d": 86400}
    windows = {w for level in c.burn_alerts for pair in level.windows for w in (pair.short, pair.long)}
    return sorted(windows, key=lambda w: int(w[:-1]) * seconds[w[-1]])


def sli_of(slo: str) -> Sli:
    if slo not in SLIS:
        raise ValueError(f"slos: no SLI is defined for {slo!r} (mixin/slos.py defines {', '.join(SLIS)})")
    return SLIS[slo]


def error_ratio(c: Config, slo: str, window: str) -> str:
    """Bad events / all events over `window`: 0, not absent, while nothing went wrong."""
    sli = sli_of(slo)
    total = sli.total(c, window)
    if sli.good is not None:  # all minus good: present whenever there is traffic
        return f"(\n{_indent(total)}\n  -\n{_indent(sli.good(c, window))}\n)\n/\n{total}"
    return f"(\n{_indent(sli.bad(c, window))}\n  or\n  0 * {total}\n)\n/\n{total}"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def sli_rules(c: Config, windows: list[str]) -> list[SloRule]:
    return [SloRule(f"slo:sli_error:ratio_rate{window}", error_ratio(c, slo, window), (*sloth_labels(c, slo), ("sloth_window", window)))
            for slo in c.slos for window in windows]


def _budget(c: Config, slo: str) -> float:
    return 1 - c.slos[slo].objective


def _number(value: float) -> str:
    return f"{value:.10g}"


def meta_rules(c: Config) -> list[SloRule]:
    rules = []
    for slo, spec in c.slos.items():
        labels, sel = sloth_labels(c, slo), sloth_selector(c, slo)
        per_budget = f" / on ({', '.join(META)}) group_left slo:error_budget:ratio{{{sel}}}"
        rules += [
            SloRule("slo:objective:ratio", f"vector({_number(spec.objective)})", labels,
                    f"{slo}: {_number(spec.objective * 100)}% over {c.slo_window}"
                    + (f", within {spec.threshold:g}s" if spec.threshold else "") + f": {spec.why}."),
            SloRule("slo:error_budget:ratio", f"vector(1 - {_number(spec.objective)})", labels),
            SloRule("slo:time_period:days", f"vector({c.slo_days})", labels),
            SloRule("slo:current_burn_rate:ratio", f"slo:sli_error:ratio_rate5m{{{sel}}}{per_budget}", labels),
            SloRule("slo:period_burn_rate:ratio", f"slo:sli_error:ratio_rate{c.slo_window}{{{sel}}}{per_budget}", labels),
            SloRule("slo:period_error_budget_remaining:ratio", f"1 - slo:period_burn_rate:ratio{{{sel}}}", labels),
            SloRule("sloth_slo_info", "vector(1)", (*labels, ("sloth_objective", _number(spec.objective * 100)))),
        ]
    return rules


def recording_groups(c: Config) -> list[tuple[str, str, str | None, list[SloRule]]]:
    """(group name, comment, interval or None, rules)."""
    if not c.slos:
        return []
    return [
        ("sollol.slo.sli", "SLOs: the error ratio of every SLO over each window a burn-rate alert reads (Sloth's names and "
         "labels; the ratio is bad events / all events, 0 while nothing went wrong).", None, sli_rules(c, sli_windows(c))),
        ("sollol.slo.window", f"The error ratio over the SLO window ({c.slo_window}), from every sample of it: evaluated less "
         "often, it is the costly one.", c.slo_window_interval, sli_rules(c, [c.slo_window])),
        ("sollol.slo.meta", "Objective, error budget and period of each SLO (constants: no cluster label, as Sloth writes them), "
         "its burn rate now and over the window, the budget left, and Sloth's info series.", None, meta_rules(c)),
    ]


# --- burn-rate alerts ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BurnRule:
    name: str
    level: BurnAlert
    slo: str
    what: str
    expr: str
    summary: str
    description: str


def _days(value: float) -> str:
    rounded = round(value, 1)
    return f"{rounded:g} day{'' if rounded == 1 else 's'}"


def _window_words(window: str) -> str:
    amount, unit = int(window[:-1]), {"m": "minute", "h": "hour", "d": "day"}[window[-1]]
    return f"{amount} {unit}{'' if amount == 1 else 's'}" if amount != 1 else f"an {unit}" if unit == "hour" else f"a {unit}"


def burn_expr(c: Config, slo: str, level: BurnAlert) -> str:
    sli, sel, budget = sli_of(slo), sloth_selector(c, slo), _number(_budget(c, slo))
    parts = []
    for pair in level.windows:
        threshold = f"({_number(pair.factor)} * {budget})"
        parts.append(
            f"(\n  max without (sloth_window) (slo:sli_error:ratio_rate{pair.short}{{{sel}}} > {threshold})\n"
            f"  and\n  max without (sloth_window) (slo:sli_error:ratio_rate{pair.long}{{{sel}}} > {threshold})\n"
            f"  and on ({c.by(*sli.labels)})\n  {sli.total(c, pair.short)} >= {_number(c.min_request_rate)}\n)")
    return "\nor\n".join(parts)


def _remaining(c: Config, slo: str) -> str:
    """Go template: what is left of the budget of this alert's series, from the recorded remaining budget (over the
    data that exists, while there is less than a window of it)."""
    sli = sli_of(slo)
    labels = (c.cluster_label, c.instance_label, *sli.labels)
    matchers = ",".join([f"sloth_id='{sloth_id(c, slo)}'", *(f"{label}='%s'" for label in labels)])
    values = " ".join(f"$labels.{label}" for label in labels)
    return ("{{ with printf \"slo:period_error_budget_remaining:ratio{" + matchers + "}\" " + values
            + " | query }}{{ $left := . | first | value }}{{ if ge $left 0.0 }} {{ $left | humanizePercentage }} of its "
            + c.slo_window + " error budget is left.{{ else }} Its " + c.slo_window
            + " error budget is overspent ({{ $left | humanizePercentage }} left).{{ end }}{{ end }}")


def _as_fast(factor: float) -> str:
    return "faster than" if factor == 1 else f"at least {_number(factor)} times as fast as"


def burn_rules(c: Config) -> list[BurnRule]:
    rules = []
    for slo, spec in c.slos.items():
        sli = sli_of(slo)
        bad = sli.bad_events.format(threshold=f"{spec.threshold:g}s" if spec.threshold else "")
        objective = f"{_number(spec.objective * 100)}%"
        for level in c.burn_alerts:
            fastest, slowest = max(p.factor for p in level.windows), min(p.factor for p in level.windows)
            pairs = " or ".join(f"{_number(p.factor)}x over {p.long} and {p.short}" for p in level.windows)
            shorts = " or ".join(_window_words(p.short) for p in level.windows)
            pace = f"gone within {_days(c.slo_days / slowest)}"
            if fastest != slowest:
                pace += f" (at {_number(fastest)}x, {_days(c.slo_days / fastest)})"
            rules.append(BurnRule(
                slo_alert_stem(slo) + level.suffix, level, slo,
                f"the {slo} SLO ({objective} over {c.slo_window}) burns its error budget at {pairs}; only with "
                f"{_number(c.min_request_rate)} events/s or more over the short window.",
                burn_expr(c, slo, level),
                f"{sli.summary_subject} is burning its error budget {'fast' if level.sloth_severity == 'page' else 'steadily'}.",
                f"{sli.subject}: {{{{ $value | humanizePercentage }}}} of the {sli.events} {bad} over the last {shorts}. "
                f"Its SLO allows {_number(_budget(c, slo) * 100)}% over {c.slo_window}, so the error budget burns {_as_fast(slowest)} "
                f"it may: at this pace it is {pace}." + _remaining(c, slo),
            ))
    return rules
