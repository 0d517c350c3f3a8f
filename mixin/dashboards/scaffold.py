"""What every dashboard has around its panels: uid, title, tags and refresh from the config, links to the other
dashboards, the data source, cluster and filter variables; and the coordinator lifecycle annotation, and the row
links between dashboards."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from mixin.dashboards.panels import DATASOURCE, Built, data_link
from mixin.dashboards.promql import Selectors, lifecycle_events

# uid, title of each dashboard: the dashboard links of every dashboard lead to the others.
TITLES = {"sollol-overview": "SOLLOL overview", "sollol-slo": "SOLLOL SLOs", "sollol-inference": "SOLLOL inference cluster",
          "sollol-requests": "SOLLOL requests", "sollol-exporter": "SOLLOL exporter health"}
# Every exporter exposes its build info: the cluster variable lists the clusters that have an exporter of this job.
CLUSTER_SOURCE = "sollol_exporter_build_info"

# Row links to the dashboard of a table row's node, model, coordinator or worker.
REQUESTS_TO_NODE = data_link("Requests to ${__data.fields.node}", "sollol-requests", "node")
LOAD_OF_NODE = data_link("Load and GPUs of ${__data.fields.node}", "sollol-inference", "node")
REQUESTS_FOR_MODEL = data_link("Requests for ${__data.fields.model}", "sollol-requests", "model")
REQUESTS_TO_COORDINATOR = data_link("Requests to ${__data.fields.coordinator}", "sollol-requests", "coordinator")
COORDINATOR_AND_WORKERS = data_link("Coordinator ${__data.fields.coordinator} and its workers", "sollol-inference", "coordinator")
WORKER_OVER_TIME = data_link("Worker ${__data.fields.backend} over time", "sollol-inference", "backend")


def probed(sel: Selectors) -> dict[str, str]:
    """The filter variables of the cluster dashboards, with the parts the exporter probes as their values."""
    return {"coordinator": sel.series("sollol_coordinator_up"), "backend": sel.series("sollol_rpc_backend_up"),
            "node": sel.series("sollol_ollama_node_up")}


def served(sel: Selectors) -> dict[str, str]:
    """The filter variables of the requests dashboard: the probes and the activity events (a node or coordinator
    SOLLOL talks to need not be one the exporter probes)."""
    return {"coordinator": sel.series("", '__name__=~"sollol_coordinator_up|sollol_coordinator_requests_total"'),
            "node": sel.series("", '__name__=~"sollol_ollama_node_up|sollol_requests_total"'),
            "model": sel.series("", '__name__=~"sollol_requests_total|sollol_coordinator_requests_total"')}


def dashboard(sel: Selectors, uid: str, description: str, filters: Mapping[str, str] | None = None,
              alerts: bool = False) -> db.Dashboard:
    """An empty dashboard with its variables: data source, Alertmanager (with `alerts`), cluster, then one filter
    per entry of `filters` (variable name -> the selector whose label of that name gives its values)."""
    cfg = sel.cfg
    dash = (db.Dashboard(TITLES[uid]).uid(uid).description(description).tags(list(cfg.dashboard_tags))
            .refresh(cfg.dashboard_refresh).time("now-1h", "now").timezone("browser").editable().links(_dashboard_links(uid)))
    dash = dash.with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    if alerts:
        dash = dash.with_variable(db.DatasourceVariable("alertmanager").label("Alertmanager").type("alertmanager"))
    # One SOLLOL cluster at a time (kubernetes-mixin's cluster variable): the only query not scoped by $cluster.
    dash = dash.with_variable(
        db.QueryVariable("cluster").label("Cluster").datasource(DATASOURCE)
        .query(f"label_values({cfg.series(CLUSTER_SOURCE)}, {cfg.cluster_label})")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
        .include_all(False).multi(False)
    )
    for name, source in (filters or {}).items():
        dash = dash.with_variable(filter_variable(name, name.capitalize(), f"label_values({source}, {name})"))
    return dash


def filter_variable(name: str, label: str, values: str) -> db.QueryVariable:
    """A multi-value variable, All by default (as the regex .*)."""
    return (db.QueryVariable(name).label(label).datasource(DATASOURCE).query(values)
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).include_all(True).multi(True).all_value(".*")
            .current(dm.VariableOption(selected=True, text="All", value="$__all")))


def _dashboard_links(uid: str) -> list[Built]:
    """Overview first, then the others; each keeps the time range and the variables (data source, cluster, filters)."""
    return [Built(dm.DashboardLink(title=title, type_val=dm.DashboardLinkType.LINK, url=f"/d/{other}", icon="dashboard",
                                   tooltip=f"Open {title}", include_vars=True, keep_time=True))
            for other, title in TITLES.items() if other != uid]


def with_panels(dash: db.Dashboard, panels: Iterable) -> db.Dashboard:
    for panel in panels:
        dash = dash.with_panel(panel)
    return dash


class _PromAnnotation(dm.AnnotationQuery):
    """An annotation query of the Prometheus data source: the SDK's model lacks the fields that name and tag it."""

    def __init__(self, title_format: str, tag_keys: str, text_format: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.title_format, self.tag_keys, self.text_format = title_format, tag_keys, text_format

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload.update({"titleFormat": self.title_format, "tagKeys": self.tag_keys, "textFormat": self.text_format,
                        "useValueForTime": False})
        return payload


def lifecycle_annotation(sel: Selectors) -> Built:
    return Built(_PromAnnotation(
        name="Coordinator lifecycle", datasource=DATASOURCE, enable=True, hide=False, icon_color="purple",
        expr=lifecycle_events(sel), title_format="Coordinator {{event}}", tag_keys="coordinator,event",
        text_format="{{coordinator}}: {{event}} (start, stop, restart or model_load, from SOLLOL's rpc activity events)"))
