"""The dashboards as files: generated from code, schema-valid, every panel and annotation with a data source
variable, every panel with a unit and a description, rates over $__rate_interval, filter variables applied."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard

from mixin.config import Config

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
SCHEMA = json.loads((Path(__file__).parent / "dashboard.schema.json").read_text())


def load(path):
    return json.loads(path.read_text())


def panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_there_are_the_five_dashboards():
    assert [p.name for p in DASHBOARDS] == ["sollol-exporter.json", "sollol-inference.json", "sollol-overview.json", "sollol-requests.json",
                                            "sollol-slo.json"]


def test_committed_json_is_what_the_generator_writes():
    result = subprocess.run([sys.executable, str(ROOT / "grafana" / "generate.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_schema(path):
    dashboard = load(path)
    jsonschema.validate(dashboard, SCHEMA)
    parsed = Dashboard.from_json(dashboard)  # the SDK's own model reads it back
    assert parsed.uid == dashboard["uid"] and len(parsed.panels) == len(dashboard["panels"])


def test_uids_are_unique_and_fixed():
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    assert set(uids) == {"sollol-overview", "sollol-inference", "sollol-exporter", "sollol-requests", "sollol-slo"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_is_complete(path):
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = set()
    for panel in panels(dashboard):
        assert panel["id"] not in ids
        ids.add(panel["id"])
        assert panel["description"].strip(), panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        uid = panel["datasource"]["uid"]
        assert uid.startswith("${") and uid[2:-1] in variables, panel["title"]
        if panel["type"] != "alertlist":
            assert panel.get("targets"), panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_no_import_placeholders_and_rates_use_the_rate_interval(path):
    text = path.read_text()
    assert "${DS_" not in text
    dashboard = load(path)
    exprs = [(panel["title"], target["expr"]) for panel in panels(dashboard) for target in panel.get("targets", [])]
    exprs += [(a["name"], a["expr"]) for a in annotations(dashboard)]
    for title, expr in exprs:
        for window in re.findall(r"(?:rate|increase|irate|changes)\([^\[]*\[([^\]]+)\]", expr):
            assert window == "$__rate_interval", (title, expr)
        for window in re.findall(r"\boffset\s+(\S+)", expr):
            assert window.rstrip(")") == "$__rate_interval", (title, expr)


def annotations(dashboard):
    return [a for a in dashboard.get("annotations", {}).get("list", []) if not a.get("builtIn")]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_annotations_use_the_data_source_variable_and_the_filters(path):
    dashboard = load(path)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for annotation in annotations(dashboard):
        assert annotation["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, annotation["name"]
        assert annotation["expr"] and annotation["titleFormat"] and annotation["tagKeys"], annotation["name"]
        assert "coordinator" in variables and '$coordinator"' in annotation["expr"], annotation["name"]


def test_coordinator_lifecycle_events_are_annotations_where_coordinators_are_shown():
    for name in ("sollol-inference.json", "sollol-requests.json"):
        (annotation,) = annotations(load(ROOT / "grafana" / "dashboards" / name))
        assert "sollol_coordinator_lifecycle_events_total" in annotation["expr"]


def test_heatmaps_read_the_buckets_as_prometheus_counted_them():
    heatmaps = [p for path in DASHBOARDS for p in panels(load(path)) if p["type"] == "heatmap"]
    assert heatmaps
    for panel in heatmaps:
        assert panel["options"]["calculate"] is False, panel["title"]
        for target in panel["targets"]:
            assert target["format"] == "heatmap" and "_bucket" in target["expr"] and "by (le)" in target["expr"], panel["title"]


def test_sollols_own_figures_are_titled_as_its_own_view():
    """Panels that relay SOLLOL's own averages and percentiles say so: the exporter's histograms are the other view."""
    own = re.compile(r"sollol_router_(latency_seconds|average_duration_seconds|success_ratio)\b")
    relaying = [p for path in DASHBOARDS for p in panels(load(path)) if any(own.search(t["expr"]) for t in p.get("targets", []))]
    assert len(relaying) >= 3
    for panel in relaying:
        assert panel["title"].endswith("(SOLLOL's own view)"), panel["title"]


def test_cluster_dashboards_filter_by_coordinator_backend_and_node():
    for name in ("sollol-overview.json", "sollol-inference.json"):
        dashboard = load(ROOT / "grafana" / "dashboards" / name)
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        for variable in ("coordinator", "backend", "node"):
            assert variables[variable]["type"] == "query" and variables[variable]["includeAll"]
            used = [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if f"${variable}" in t["expr"]]
            assert used, f"{name}: ${variable} filters nothing"


def test_requests_dashboard_filters_by_coordinator_node_and_model():
    dashboard = load(ROOT / "grafana" / "dashboards" / "sollol-requests.json")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for variable in ("coordinator", "node", "model"):
        assert variables[variable]["type"] == "query" and variables[variable]["includeAll"]
    for panel in panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            # every query of the events' families applies the filters its labels allow
            if re.search(r"\bsollol_requests_total|sollol_request_duration_seconds_bucket|sollol_request_errors_total", expr):
                assert '$node"' in expr and '$model"' in expr, (panel["title"], expr)
            if re.search(r"sollol_coordinator_(requests_total|completion_tokens|request_duration)", expr):
                assert '$coordinator"' in expr and '$model"' in expr, (panel["title"], expr)
            if re.search(r"^\w+ by \(node\) \(node:", expr):
                assert '$node"' in expr, (panel["title"], expr)
            if re.search(r"^\w+ by \(model\) \(model:", expr):
                assert '$model"' in expr, (panel["title"], expr)


# --- the mixin: job and cluster scoping, the cluster variable, links, recording rules ---------------------------

def generator():
    spec = importlib.util.spec_from_file_location("grafana_generate", ROOT / "grafana" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SENTINEL = Config(job_selector='job="SENTINEL_JOB"', cluster_label="sentinel_cluster", instance_label="sentinel_instance")
RAW_MATCHERS = 'job="SENTINEL_JOB",sentinel_cluster=~"$cluster"'
RECORDED_MATCHERS = 'sentinel_cluster=~"$cluster"'


def queries(dashboard):
    """(where, PromQL) of every panel target, annotation and query variable."""
    found = [(panel["title"], target["expr"]) for panel in panels(dashboard) for target in panel.get("targets", [])]
    found += [(a["name"], a["expr"]) for a in annotations(dashboard)]
    found += [("$" + v["name"], v["query"]) for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return found


METRIC = re.compile(r"(?<![\w:])(\w+:sollol_\w+:\w+|slo:\w+:\w+|sollol_\w+|process_\w+|up|ALERTS)(?![\w:(])")
# The SLOs' constants (objective, error budget, period, Sloth's info series) have no cluster label, as Sloth writes them.
CONSTANT = re.compile(r"(?<![\w:])(slo:(?:objective|error_budget|time_period):\w+|sloth_slo_info)(?![\w:(])")


def unscoped(expr: str) -> list[str]:
    """What in `expr` (rendered with the sentinel config) lacks the sentinel matchers, or names a default label."""
    problems = []
    marked = expr.replace(RAW_MATCHERS, "@RAW@").replace(RECORDED_MATCHERS, "@REC@")
    bare = re.sub(r'"(?:\\.|[^"\\])*"', '""', marked)  # the names inside strings are regex values, not metrics
    constant_braces = {found.end() for found in CONSTANT.finditer(bare) if bare[found.end():].startswith("{")}
    for found in METRIC.finditer(bare):
        if CONSTANT.fullmatch(found.group(1)):
            if bare[found.end():].startswith(("{@RAW@", "{@REC@")):
                problems.append(f"{found.group(1)} scoped")
            continue
        if not bare[found.end():].startswith("{@REC@" if ":" in found.group(1) or found.group(1) == "ALERTS" else "{@RAW@"):
            problems.append(found.group(1))
    problems += [f"{{ at {brace.start()}" for brace in re.finditer(r"\{", bare)
                 if brace.start() not in constant_braces and not bare[brace.end():].startswith(("@RAW@", "@REC@"))]
    problems += re.findall(r"\b(?:cluster|instance)\b", re.sub(r"\$cluster\b|\bcluster:sollol_", "", bare))
    problems += ['job="sollol"'] if 'job="sollol"' in expr else []
    return problems


def test_the_scoping_check_catches_what_it_should():
    assert unscoped('sum by (node) (rate(sollol_requests_total{node=~"$node"}[5m])) / sum(node:sollol_requests:rate5m)') == [
        "sollol_requests_total", "node:sollol_requests:rate5m", "{ at 41"]
    assert unscoped('max by (instance) (up{job="sollol"})') == ["up", "{ at 21", "instance", 'job="sollol"']
    assert unscoped('sum(sollol_a{' + RAW_MATCHERS + '}) / sum(x:sollol_b:rate5m{' + RECORDED_MATCHERS + ',node="a"})') == []
    assert unscoped('slo:sli_error:ratio_rate1h{sloth_slo="x"} / on (sloth_id) group_left slo:error_budget:ratio') == [
        "slo:sli_error:ratio_rate1h", "{ at 26"]
    assert unscoped('count(ALERTS{' + RECORDED_MATCHERS + '}) / on (sloth_id) group_left slo:objective:ratio{sloth_slo="x"}') == []
    assert unscoped('slo:objective:ratio{' + RECORDED_MATCHERS + '}') == ["slo:objective:ratio scoped"]


def test_every_selector_gets_the_job_and_cluster_matchers():
    """Rendered with sentinel names: every metric of ours in every query, and every bare {…} selector, starts with the
    job selector and the cluster matcher, recording rules (which drop the job label) with the cluster matcher alone;
    no default name is left behind."""
    checked = 0
    for name, dashboard in generator().build(SENTINEL).items():
        for where, expr in queries(dashboard):
            if where == "$cluster":
                assert expr == "label_values(sollol_exporter_build_info{" + SENTINEL.job_selector + "}, sentinel_cluster)"
                continue
            assert not unscoped(expr), (name, where, unscoped(expr), expr)
            checked += len(METRIC.findall(expr))
    assert checked > 100


def test_the_cli_puts_a_custom_selector_into_every_query_of_every_dashboard(tmp_path):
    """Through `--set` with the sentinel names: every panel target, annotation and query variable of every dashboard
    carries the sentinel job selector and cluster matcher (recorded series the cluster matcher), but for the one
    query that reads the SLO constants alone, which have no cluster label."""
    settings = [f"job_selector={SENTINEL.job_selector}", f"cluster_label={SENTINEL.cluster_label}", f"instance_label={SENTINEL.instance_label}"]
    subprocess.run([sys.executable, str(ROOT / "grafana" / "generate.py"), *(f"--set={s}" for s in settings), "--out", str(tmp_path)],
                   check=True)
    written = {path.name: load(path) for path in sorted(tmp_path.glob("*.json"))}
    assert list(written) == [path.name for path in DASHBOARDS]
    carrying, constants_only = 0, []
    for name, dashboard in written.items():
        for where, expr in queries(dashboard):
            if where == "$cluster":
                assert f"{{{SENTINEL.job_selector}}}, {SENTINEL.cluster_label})" in expr, (name, expr)
            elif RAW_MATCHERS in expr or RECORDED_MATCHERS in expr:
                assert not unscoped(expr), (name, where, unscoped(expr), expr)
            else:
                bare = CONSTANT.sub("", re.sub(r'"(?:\\.|[^"\\])*"', '""', expr))
                assert not METRIC.search(bare), (name, where, expr)
                constants_only.append((name, where))
                continue
            carrying += 1
    assert constants_only == [("sollol-slo.json", "$slo")]
    assert carrying + 1 == sum(len(queries(load(path))) for path in DASHBOARDS) > 150


def test_the_default_config_writes_the_committed_files(tmp_path):
    module = generator()
    assert module.build() == module.build(Config())
    for name, model in module.build().items():
        assert load(ROOT / "grafana" / "dashboards" / name) == model


def test_the_cli_writes_a_set_for_another_setup(tmp_path):
    command = [sys.executable, str(ROOT / "grafana" / "generate.py"), "--set", 'job_selector=job="monitoring/sollol"',
               "--set", "cluster_label=k8s_cluster", "--set", "dashboard_tags=sollol,mixin", "--out", str(tmp_path)]
    subprocess.run(command, check=True)
    written = sorted(p.name for p in tmp_path.glob("*.json"))
    assert written == [p.name for p in DASHBOARDS]
    overview = load(tmp_path / "sollol-overview.json")
    assert overview["tags"] == ["sollol", "mixin"]
    exprs = json.dumps(overview["panels"]).replace('\\"', '"')
    assert 'sollol_ollama_node_up{job="monitoring/sollol",k8s_cluster=~"$cluster",node=~"$node"}' in exprs
    assert '{job="monitoring/sollol",k8s_cluster=~"$cluster",__name__=~"sollol_(redis|coordinator|' in exprs
    assert subprocess.run([*command, "--check"]).returncode == 0
    assert subprocess.run([sys.executable, str(ROOT / "grafana" / "generate.py"), "--check", "--out", str(tmp_path)],
                          capture_output=True).returncode == 1
    bad = subprocess.run([sys.executable, str(ROOT / "grafana" / "generate.py"), "--set", "nonsense=1", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "KEY=VALUE" in bad.stderr


@pytest.mark.parametrize("config", [Config(), SENTINEL], ids=["default", "renamed"])
def test_every_dashboard_has_the_cluster_variable(config):
    for name, dashboard in generator().build(config).items():
        names = [v["name"] for v in dashboard["templating"]["list"]]
        variable = dashboard["templating"]["list"][names.index("cluster")]
        assert variable["type"] == "query" and not variable["multi"] and not variable["includeAll"], name
        assert variable["query"] == f"label_values(sollol_exporter_build_info{{{config.job_selector}}}, {config.cluster_label})", name
        # the filters after it, so that their values are the cluster's
        assert names.index("cluster") < min((names.index(n) for n in ("coordinator", "backend", "node", "model") if n in names), default=99)


def test_dashboards_link_to_each_other_keeping_time_and_variables():
    uids = {load(path)["uid"] for path in DASHBOARDS}
    for path in DASHBOARDS:
        dashboard = load(path)
        links = dashboard["links"]
        assert {link["url"] for link in links} == {f"/d/{uid}" for uid in uids - {dashboard["uid"]}}, path.name
        for link in links:
            assert link["type"] == "link" and link["includeVars"] and link["keepTime"], (path.name, link)
    overview = load(ROOT / "grafana" / "dashboards" / "sollol-overview.json")
    assert [link["url"] for link in overview["links"]] == ["/d/sollol-slo", "/d/sollol-inference", "/d/sollol-requests", "/d/sollol-exporter"]


def data_links():
    """(dashboard, panel, field, link) of every data link."""
    for path in DASHBOARDS:
        dashboard = load(path)
        for panel in panels(dashboard):
            for override in panel.get("fieldConfig", {}).get("overrides", []):
                for prop in override["properties"]:
                    if prop["id"] == "links":
                        for link in prop["value"]:
                            yield path.stem, panel["title"], override["matcher"]["options"], link


def test_rows_link_to_the_dashboard_filtered_on_them():
    by_uid = {load(path)["uid"]: load(path) for path in DASHBOARDS}
    found = set()
    for dashboard, title, field, link in data_links():
        target, _, query = link["url"].partition("?")
        target = by_uid[target.removeprefix("/d/")]
        params = query.split("&")
        variable, value = params[0].split("=")
        assert value == f"${{__data.fields.{field}}}", link
        assert variable.removeprefix("var-") in {v["name"] for v in target["templating"]["list"]}, link
        assert {"${datasource:queryparam}", "${cluster:queryparam}", "${__url_time_range}"} <= set(params), link
        found.add((dashboard, title, field, target["uid"]))
    assert {("sollol-overview", "RPC backends", "backend", "sollol-inference"),
            ("sollol-overview", "Ollama hosts", "node", "sollol-requests"),
            ("sollol-overview", "Ollama hosts", "node", "sollol-inference"),
            ("sollol-requests", "Nodes over the last 5 minutes", "node", "sollol-requests"),
            ("sollol-requests", "Nodes over the last 5 minutes", "node", "sollol-inference")} <= found


def test_every_recording_rule_is_used_by_a_panel_or_an_alert():
    rules = ROOT / "prometheus" / "rules"
    recorded = {rule["record"] for group in yaml.safe_load((rules / "sollol-recording.yml").read_text())["groups"] for rule in group["rules"]}
    alert_exprs = [rule["expr"] for group in yaml.safe_load((rules / "sollol-alerts.yml").read_text())["groups"]
                   for rule in group["rules"] if "alert" in rule]
    panel_exprs = [expr for path in DASHBOARDS for _, expr in queries(load(path))]
    unused = [name for name in sorted(recorded)
              if not any(re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", expr) for expr in panel_exprs + alert_exprs)]
    assert not unused, f"recording rules no panel and no alert uses: {unused}"
    # the six that were once used by nothing are now on a panel
    for name in ("coordinator:sollol_coordinator_tokens_predicted:rate5m", "coordinator:sollol_coordinator_prompt_tokens:rate5m",
                 "coordinator:sollol_rpc_backend_up:ratio", "cluster:sollol_rpc_backend_up:ratio",
                 "node:sollol_ollama_node_requests:rate5m", "node:sollol_routing_node_selections:rate5m"):
        assert any(name in expr for expr in panel_exprs), name


# --- every family the exporter serves is on a panel or in a rule --------------------------------------------------

README = ROOT / "README.md"
EXCEPTIONS_HEADER = "| Family | Why it is on no panel and in no rule |"


def served_families() -> set[str]:
    """The README's metric table, which tests/test_readme.py keeps equal to what the exporter serves."""
    names = set()
    for line in README.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `sollol_") and len(cells) == 4:
            names.update(re.findall(r"`(sollol_[a-z_]+)`", cells[0]))
    return names


def documented_exceptions() -> dict[str, str]:
    """Family -> why, from the README's table of the families left off every panel and rule."""
    lines = README.read_text().splitlines()
    start = lines.index(EXCEPTIONS_HEADER) + 2
    found = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        names, why = [cell.strip() for cell in line.strip().strip("|").split("|")]
        for name in re.findall(r"`(sollol_[a-z_]+)`", names):
            found[name] = why
    return found


def used_families(families: set[str]) -> set[str]:
    exprs = [expr for path in DASHBOARDS for _, expr in queries(load(path))]
    for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            exprs += [text for rule in group["rules"] for text in (rule["expr"], rule.get("annotations", {}).get("description", ""))]
    patterns = [pattern for expr in exprs for pattern in re.findall(r'__name__=~"([^"]+)"', expr)]
    return {name for name in families
            if any(re.search(rf"(?<![\w:]){name}(?:_bucket|_count|_sum)?(?![\w:])", expr) for expr in exprs)
            or any(re.fullmatch(pattern, name) for pattern in patterns)}


def test_every_family_is_on_a_panel_or_in_a_rule_but_a_dozen_named_with_why():
    families = served_families()
    assert len(families) > 100
    exceptions = documented_exceptions()
    assert exceptions.keys() <= families
    assert len(exceptions) <= 12 and all(why for why in exceptions.values())
    assert families - used_families(families) == set(exceptions), "left off every panel and rule, or listed but used"


def test_the_coverage_check_sees_a_family_in_a_regex_and_a_histogram_by_its_series():
    assert used_families({"sollol_dashboard_up", "sollol_request_duration_seconds", "sollol_no_such_family"}) == {
        "sollol_dashboard_up", "sollol_request_duration_seconds"}
