"""The committed dashboards' queries, evaluated by promtool's PromQL engine on series shaped like each kind of SOLLOL
cluster: Ollama only, llama.cpp only, both, nothing found yet. System status covers whatever parts are present,
a coordinator that is not there shows as ABSENT, and latency panels read unary requests unless they say otherwise."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARDS = ROOT / "grafana" / "dashboards"
ALL = {"$cluster": "c1", "$coordinator": ".*", "$backend": ".*", "$node": ".*", "$model": ".*", "$slo": ".*", "$__rate_interval": "1m"}
# Each metric below carries the labels the shipped scrape job gives it.
TARGET = 'job="sollol",instance="exp:9877",cluster="c1"'


def panel_expr(dashboard: str, title: str, ref: str = "A", **variables: str) -> str:
    model = json.loads((DASHBOARDS / f"{dashboard}.json").read_text())
    (panel,) = [p for p in model["panels"] if p["title"] == title]
    (target,) = [t for t in panel["targets"] if t["refId"] == ref]
    expr = target["expr"]
    # Grafana writes a single selected value as it is and "All" as the variable's all value, .*
    for name, value in {**ALL, **{"$" + k: v for k, v in variables.items()}}.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def series(metric: str, values: str, **labels: str) -> dict:
    extra = "".join(f',{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{TARGET}{extra}}}", "values": values}


def evaluate(tmp_path: Path, inputs: list[dict], expr: str, eval_time: str = "5m") -> list[dict]:
    """What `expr` returns at `eval_time` over `inputs`, checked by promtool against every expectation it could have:
    run once with no sample expected, and read the result from promtool's failure report."""
    (tmp_path / "none.yml").write_text("groups: []\n")
    case = {"rule_files": ["none.yml"], "evaluation_interval": "15s",
            "tests": [{"interval": "15s", "input_series": inputs,
                       "promql_expr_test": [{"expr": expr, "eval_time": eval_time, "exp_samples": []}]}]}
    (tmp_path / "case.yml").write_text(yaml.safe_dump(case, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", str(tmp_path / "case.yml")], capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    if result.returncode == 0:
        return []
    assert "got:" in output, output
    return _parse(output.split("got:", 1)[1].strip())


def _parse(report: str) -> list[dict]:
    """promtool's `{a="b", c="d"} 1.5E+00, {...} 0E+00` into [{"labels": {...}, "value": 1.5}, ...]."""
    found, rest = [], report.splitlines()[0].strip()
    while rest:
        close = rest.index("}")
        labels = dict(part.split("=", 1) for part in rest[1:close].split(", ") if part)
        value, _, rest = rest[close + 1:].strip().partition(", ")
        found.append({"labels": {k: v.strip('"') for k, v in labels.items()}, "value": float(value)})
        rest = rest.strip()
    return found


def values(found: list[dict]) -> list[float]:
    return [each["value"] for each in found]


def test_the_reader_of_promtool_s_report_reads_labels_and_values(tmp_path):
    inputs = [series("sollol_redis_up", "1x40"), series("sollol_ollama_node_up", "0x40", node="a:11434")]
    found = evaluate(tmp_path, inputs, '{__name__=~"sollol_(redis|ollama_node)_up"}')
    assert sorted((f["labels"]["__name__"], f["value"]) for f in found) == [("sollol_ollama_node_up", 0.0), ("sollol_redis_up", 1.0)]
    assert evaluate(tmp_path, inputs, "sollol_nothing") == []


# --- System status -----------------------------------------------------------------------------------------

REDIS, DASHBOARD = series("sollol_redis_up", "1x40"), series("sollol_dashboard_up", "1x40")
SHAPES = {
    # no llama.cpp at all: no coordinator, no worker series (the default coordinator is absent, not down)
    "ollama only": ([REDIS, DASHBOARD, series("sollol_ollama_node_up", "1x40", node="a:11434"),
                     series("sollol_coordinator_state", "1x40", coordinator="localhost:18080", state="absent")], 1),
    "ollama only, one node down": ([REDIS, series("sollol_ollama_node_up", "1x40", node="a:11434"),
                                    series("sollol_ollama_node_up", "0x40", node="b:11434")], 0),
    "llama.cpp only": ([REDIS, series("sollol_coordinator_up", "1x40", coordinator="main"),
                        series("sollol_rpc_backend_up", "1x40", backend="10.0.0.45:50052")], 1),
    "llama.cpp only, a worker down": ([REDIS, series("sollol_coordinator_up", "1x40", coordinator="main"),
                                       series("sollol_rpc_backend_up", "0x40", backend="10.0.0.45:50052")], 0),
    "both, the dashboard service down": ([REDIS, series("sollol_dashboard_up", "0x40"),
                                          series("sollol_coordinator_up", "1x40", coordinator="main"),
                                          series("sollol_ollama_node_up", "1x40", node="a:11434")], 0),
    "coordinators but no workers": ([REDIS, series("sollol_coordinator_up", "1x40", coordinator="main")], 1),
    "redis down, nothing else known": ([series("sollol_redis_up", "0x40")], 0),
    "another cluster's outage": ([REDIS, {"series": 'sollol_redis_up{job="sollol",instance="exp:9877",cluster="c2"}', "values": "0x40"}], 1),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_system_status_covers_every_part_that_is_present(tmp_path, shape):
    inputs, expected = SHAPES[shape]
    assert values(evaluate(tmp_path, inputs, panel_expr("sollol-overview", "System status"))) == [expected]


def test_system_status_finds_nothing_when_no_part_is_reported_and_says_so(tmp_path):
    inputs = [series("sollol_exporter_build_info", "1x40", version="0.1.0", python_version="3.11.2"),
              series("sollol_coordinator_state", "1x40", coordinator="localhost:18080", state="absent")]
    assert evaluate(tmp_path, inputs, panel_expr("sollol-overview", "System status")) == []
    model = json.loads((DASHBOARDS / "sollol-overview.json").read_text())
    (panel,) = [p for p in model["panels"] if p["title"] == "System status"]
    assert panel["fieldConfig"]["defaults"]["noValue"] == "NOTHING FOUND"
    texts = {option["text"] for mapping in panel["fieldConfig"]["defaults"]["mappings"] for option in mapping["options"].values()}
    assert texts == {"HEALTHY", "DEGRADED"}


def test_system_status_filters_the_parts_that_carry_the_filter_s_label_and_keeps_the_rest(tmp_path):
    inputs = [series("sollol_redis_up", "0x40"), series("sollol_ollama_node_up", "1x40", node="a:11434"),
              series("sollol_ollama_node_up", "0x40", node="b:11434"), series("sollol_coordinator_up", "0x40", coordinator="other")]
    # one node selected: the other node and the other coordinator drop out, Redis (which has no node label) stays
    assert values(evaluate(tmp_path, inputs, panel_expr("sollol-overview", "System status", node="a:11434", coordinator="main"))) == [0]
    inputs[0] = series("sollol_redis_up", "1x40")
    assert values(evaluate(tmp_path, inputs, panel_expr("sollol-overview", "System status", node="a:11434", coordinator="main"))) == [1]
    assert values(evaluate(tmp_path, inputs, panel_expr("sollol-overview", "System status"))) == [0]


# --- coordinators that are not there -------------------------------------------------------------------------

def test_a_coordinator_nobody_expects_shows_as_absent_not_down(tmp_path):
    inputs = [series("sollol_coordinator_state", "1x40" if state == "absent" else "0x40", coordinator="localhost:18080", state=state)
              for state in ("ok", "loading", "stalled", "hung", "unreachable", "error", "absent")]
    inputs += [series("sollol_coordinator_state", "1x40" if state == "unreachable" else "0x40", coordinator="main", state=state)
               for state in ("ok", "unreachable", "absent")]
    found = evaluate(tmp_path, inputs, panel_expr("sollol-inference", "Coordinator state"))
    codes = {f["labels"]["coordinator"]: f["value"] for f in found}
    model = json.loads((DASHBOARDS / "sollol-inference.json").read_text())
    (panel,) = [p for p in model["panels"] if p["title"] == "Coordinator state"]
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    assert mapping["options"][f"{codes['localhost:18080']:g}"]["text"] == "ABSENT"
    assert mapping["options"][f"{codes['main']:g}"]["text"] == "DOWN"


# --- latency: unary by default, streams apart ------------------------------------------------------------------

def buckets(streaming: str, le_counts: dict[str, str], model: str = "m1") -> list[dict]:
    return [series("sollol_request_duration_seconds_bucket", counts, node="a:11434", model=model, operation="chat",
                   streaming=streaming, le=le) for le, counts in le_counts.items()]


# Unary requests answer within a second; streams take one to five minutes (their whole generation), twice as many.
TRAFFIC = (buckets("false", {"1.0": "0+10x40", "300.0": "0+10x40", "+Inf": "0+10x40"})
           + buckets("true", {"1.0": "0x40", "300.0": "0+20x40", "+Inf": "0+20x40"}))


@pytest.mark.parametrize("dashboard, title, ref", [
    ("sollol-requests", "p95 latency", "A"),
    ("sollol-requests", "Latency per node (p50, p95, p99)", "B"),
    ("sollol-requests", "Latency per model (p50, p95, p99)", "B"),
])
def test_latency_panels_read_unary_requests_so_streams_do_not_inflate_them(tmp_path, dashboard, title, ref):
    assert values(evaluate(tmp_path, TRAFFIC, panel_expr(dashboard, title, ref))) == [0.95]


def test_the_latency_heatmap_counts_unary_requests_only(tmp_path):
    found = evaluate(tmp_path, TRAFFIC, panel_expr("sollol-requests", "Latency heatmap"))
    per_bucket = {f["labels"]["le"]: round(f["value"], 6) for f in found}
    assert per_bucket == {"1.0": round(10 / 15, 6), "300.0": round(10 / 15, 6), "+Inf": round(10 / 15, 6)}


def recorded(level: str, name: str, streaming: str, q: str, value: str) -> dict:
    return {"series": f'{level}:sollol_request_duration_seconds:quantile_rate5m{{instance="exp:9877",cluster="c1",{level}="{name}",'
                      f'streaming="{streaming}",quantile="{q}"}}', "values": f"{value}x40"}


@pytest.mark.parametrize("dashboard, title, ref, level", [
    ("sollol-overview", "p95 latency per model", "A", "model"),
    ("sollol-requests", "Models over the last 5 minutes", "D", "model"),
    ("sollol-requests", "Nodes over the last 5 minutes", "D", "node"),
])
def test_recorded_latency_panels_read_unary_quantiles(tmp_path, dashboard, title, ref, level):
    inputs = [recorded(level, "x", "false", "0.95", "0.9"), recorded(level, "x", "true", "0.95", "240")]
    assert values(evaluate(tmp_path, inputs, panel_expr(dashboard, title, ref))) == [0.9]


def test_stream_durations_have_their_own_panel(tmp_path):
    inputs = [recorded("model", "m1", "false", "0.95", "0.9"), recorded("model", "m1", "true", "0.95", "240"),
              recorded("model", "m1", "true", "0.5", "120")]
    assert values(evaluate(tmp_path, inputs, panel_expr("sollol-requests", "Stream duration per model (p50, p95)", "B"))) == [240]
    assert values(evaluate(tmp_path, inputs, panel_expr("sollol-requests", "Stream duration per model (p50, p95)", "A"))) == [120]


# --- the overview's top row and the SLO dashboard ---------------------------------------------------------------

def slo_series(record: str, value: str, slo: str, window: str | None = None, **target: str) -> dict:
    labels = {"instance": "exp:9877", "cluster": "c1", **target, "sloth_id": f"sollol-{slo}", "sloth_service": "sollol", "sloth_slo": slo}
    if window:
        labels["sloth_window"] = window
    return {"series": record + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "values": f"{value}x40"}


def slo_constants(slo: str, objective: float) -> list[dict]:
    meta = f'{{sloth_id="sollol-{slo}",sloth_service="sollol",sloth_slo="{slo}"}}'
    return [{"series": f"slo:objective:ratio{meta}", "values": f"{objective}x40"},
            {"series": f"slo:error_budget:ratio{meta}", "values": f"{1 - objective:.10g}x40"},
            {"series": f"slo:time_period:days{meta}", "values": "30x40"}]


def test_the_overview_error_ratio_is_zero_while_nothing_fails_and_absent_without_traffic(tmp_path):
    traffic = [series("sollol_requests_total", "0+10x40", node="a:11434", model="m1", operation="chat", outcome="success", streaming="false")]
    assert values(evaluate(tmp_path, traffic, panel_expr("sollol-overview", "Error ratio"))) == [0]
    failing = [*traffic, series("sollol_requests_total", "0+10x40", node="a:11434", model="m1", operation="unknown", outcome="error", streaming="false")]
    assert values(evaluate(tmp_path, failing, panel_expr("sollol-overview", "Error ratio"))) == [0.5]
    assert evaluate(tmp_path, [REDIS], panel_expr("sollol-overview", "Error ratio")) == []


def test_the_worst_slo_budget_follows_the_node_filter_and_keeps_slos_without_a_node(tmp_path):
    inputs = [slo_series("slo:period_error_budget_remaining:ratio", "0.9", "node-availability", "30d", node="a:11434"),
              slo_series("slo:period_error_budget_remaining:ratio", "-0.5", "node-availability", "30d", node="b:11434"),
              slo_series("slo:period_error_budget_remaining:ratio", "0.4", "model-latency", "30d", model="m1")]
    assert values(evaluate(tmp_path, inputs, panel_expr("sollol-overview", "Worst SLO budget"))) == [-0.5]
    assert values(evaluate(tmp_path, inputs, panel_expr("sollol-overview", "Worst SLO budget", node="a:11434"))) == [0.4]


SLO_TABLE = "SLOs by budget left"


def test_the_slo_table_says_when_the_budget_is_gone_at_the_last_hour_s_burn_rate(tmp_path):
    inputs = [*slo_constants("node-availability", 0.99),
              # half the budget left, burning at 2x: 0.5 * 30 days / 2 = 7.5 days
              slo_series("slo:period_error_budget_remaining:ratio", "0.5", "node-availability", "30d", node="a:11434"),
              slo_series("slo:sli_error:ratio_rate1h", "0.02", "node-availability", "1h", node="a:11434"),
              # not burning: never at this rate (a year, mapped to a text)
              slo_series("slo:period_error_budget_remaining:ratio", "0.8", "node-availability", "30d", node="b:11434"),
              slo_series("slo:sli_error:ratio_rate1h", "0", "node-availability", "1h", node="b:11434"),
              # overspent: gone already
              slo_series("slo:period_error_budget_remaining:ratio", "-1", "node-availability", "30d", node="c:11434"),
              slo_series("slo:sli_error:ratio_rate1h", "0.05", "node-availability", "1h", node="c:11434")]
    found = {f["labels"]["node"]: f["value"] for f in evaluate(tmp_path, inputs, panel_expr("sollol-slo", SLO_TABLE, "E"))}
    assert found == {"a:11434": 7.5 * 86400, "b:11434": 365 * 86400, "c:11434": 0}
    model = json.loads((DASHBOARDS / "sollol-slo.json").read_text())
    (panel,) = [p for p in model["panels"] if p["title"] == SLO_TABLE]
    (override,) = [o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "Value #E"]
    (mappings,) = [p["value"] for p in override["properties"] if p["id"] == "mappings"]
    assert mappings[0]["options"][str(365 * 86400)]["text"] == "not at this rate"


def test_the_slo_table_shows_the_objective_and_which_burn_alert_fires(tmp_path):
    remaining = [slo_series("slo:period_error_budget_remaining:ratio", "0.5", "node-availability", "30d", node=node)
                 for node in ("a:11434", "b:11434", "c:11434")]
    alerts = [{"series": 'ALERTS{alertname="SollolNodeAvailabilityFastBurn",alertstate="firing",severity="critical",cluster="c1",'
                         'instance="exp:9877",node="a:11434",sloth_id="sollol-node-availability",sloth_service="sollol",'
                         'sloth_slo="node-availability",sloth_severity="page"}', "values": "1x40"},
              {"series": 'ALERTS{alertname="SollolNodeAvailabilitySlowBurn",alertstate="firing",severity="warning",cluster="c1",'
                         'instance="exp:9877",node="a:11434",sloth_id="sollol-node-availability",sloth_service="sollol",'
                         'sloth_slo="node-availability",sloth_severity="ticket"}', "values": "1x40"},
              {"series": 'ALERTS{alertname="SollolNodeAvailabilitySlowBurn",alertstate="firing",severity="warning",cluster="c1",'
                         'instance="exp:9877",node="b:11434",sloth_id="sollol-node-availability",sloth_service="sollol",'
                         'sloth_slo="node-availability",sloth_severity="ticket"}', "values": "1x40"},
              # pending is not firing
              {"series": 'ALERTS{alertname="SollolNodeAvailabilityFastBurn",alertstate="pending",severity="critical",cluster="c1",'
                         'instance="exp:9877",node="c:11434",sloth_id="sollol-node-availability",sloth_service="sollol",'
                         'sloth_slo="node-availability",sloth_severity="page"}', "values": "1x40"}]
    inputs = [*slo_constants("node-availability", 0.99), *remaining, *alerts]
    state = {f["labels"]["node"]: f["value"] for f in evaluate(tmp_path, inputs, panel_expr("sollol-slo", SLO_TABLE, "F"))}
    assert state == {"a:11434": 2, "b:11434": 1, "c:11434": 0}
    objective = {f["labels"]["node"]: f["value"] for f in evaluate(tmp_path, inputs, panel_expr("sollol-slo", SLO_TABLE, "B"))}
    assert objective == {"a:11434": 0.99, "b:11434": 0.99, "c:11434": 0.99}
