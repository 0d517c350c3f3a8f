"""The panel shapes the dashboards use, on grafana-foundation-sdk's builders: queries, stat, time series, state
timeline, table, heatmap and alert list panels, value mappings, thresholds, and links. Nothing here writes PromQL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
ALERTMANAGER = dm.DataSourceRef(type_val="alertmanager", uid="${alertmanager}")


class Built:
    """A model the SDK has no builder for, passed where it expects one."""

    def __init__(self, model) -> None:
        self.model = model

    def build(self):
        return self.model


def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False, as_table: bool = False,
          as_heatmap: bool = False) -> prom.Dataquery:
    q = prom.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    if as_table:
        q = q.format(PromQueryFormat.TABLE)
    if as_heatmap:
        q = q.format(PromQueryFormat.HEATMAP)
    return q


def instant(expr: str, legend: str = "", ref: str = "A") -> prom.Dataquery:
    """A query for the figure of a stat panel: the latest value only."""
    return query(expr, legend, ref, instant=True)


def place(panel, x: int, y: int, w: int, h: int, datasource: dm.DataSourceRef = DATASOURCE):
    return panel.grid_pos(dm.GridPos(x=x, y=y, w=w, h=h)).datasource(datasource)


def prop(name: str, value) -> dm.DynamicConfigValue:
    return dm.DynamicConfigValue(id_val=name, value=value)


def mapping(states: Mapping[str, tuple[str, str]]) -> list[dm.ValueMap]:
    """Value -> (text, colour), in the order given."""
    return [dm.ValueMap(options={value: dm.ValueMappingResult(text=text, color=color, index=i)
                                 for i, (value, (text, color)) in enumerate(states.items())})]


def value_texts(texts: Mapping[str, tuple[str, str] | str]) -> list[dict]:
    """Value -> (text, colour), or the text alone to keep the cell's colour: a table column's value mapping."""
    options = {value: {"text": shown} if isinstance(shown, str) else {"text": shown[0], "color": shown[1]}
               for value, shown in texts.items()}
    return [{"type": "value", "options": options}]


def thresholds(*steps: tuple[float | None, str]) -> Built:
    return Built(dm.ThresholdsConfig(mode=dm.ThresholdsMode.ABSOLUTE, steps=[dm.Threshold(value=v, color=c) for v, c in steps]))


def stat_panel(title: str, description: str, unit: str, *queries: prom.Dataquery, mappings=None):
    panel = stat.Panel().title(title).description(description).unit(unit)
    for q in queries:
        panel = panel.with_target(q)
    if mappings:
        panel = panel.mappings(mappings)
    return panel


def series_panel(title: str, description: str, unit: str, *queries: prom.Dataquery):
    panel = timeseries.Panel().title(title).description(description).unit(unit)
    for q in queries:
        panel = panel.with_target(q)
    return panel


def timeline_panel(title: str, description: str, expr: str, legend: str, states: Mapping[str, tuple[str, str]]):
    return (statetimeline.Panel().title(title).description(description).unit("none")
            .with_target(query(expr, legend)).mappings(mapping(states)))


@dataclass(frozen=True)
class Column:
    """One value column of a table: an instant query, shown as `name` in `unit` with the properties given, or
    hidden (a query that only brings its labels, such as an info series' version, into the merged rows)."""

    expr: str
    name: str | None = None
    unit: str | None = None
    decimals: int | None = None
    mappings: list | None = None
    props: tuple[dm.DynamicConfigValue, ...] = ()
    hidden: bool = False

    def properties(self) -> list[dm.DynamicConfigValue]:
        found = [prop("displayName", self.name)] if self.name else []
        found += [prop("unit", self.unit)] if self.unit else []
        found += [prop("decimals", self.decimals)] if self.decimals is not None else []
        found += [prop("mappings", self.mappings)] if self.mappings is not None else []
        return [*found, *self.props, *([prop("custom.hidden", True)] if self.hidden else [])]


def labels_of(expr: str) -> Column:
    return Column(expr, hidden=True)


def table_panel(title: str, description: str, unit: str, *columns: Column, mappings=None,
                fields: Iterable[tuple[str, list]] = ()):
    """One row per label set: the columns' queries (refs A, B, ...) merged on their labels, each value column
    named and formatted by its Column, then the overrides of label `fields` (their links, or hiding them)."""
    panel = table.Panel().title(title).description(description).unit(unit)
    refs = [chr(ord("A") + index) for index in range(len(columns))]
    for column, ref in zip(columns, refs, strict=True):
        panel = panel.with_target(query(column.expr, ref=ref, instant=True, as_table=True))
    if len(columns) > 1:
        panel = panel.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
    panel = panel.with_transformation(dm.DataTransformerConfig(id_val="organize", options={"excludeByName": {"Time": True}}))
    if mappings:
        panel = panel.mappings(mappings)
    for column, ref in zip(columns, refs, strict=True):
        if column.properties():
            # Grafana names the value field of a single query "Value", of several "Value #<ref>".
            panel = panel.override_by_name("Value" if len(columns) == 1 else f"Value #{ref}", column.properties())
    for name, props in fields:
        panel = panel.override_by_name(name, props)
    return panel


def heatmap_panel(title: str, description: str, bucket_unit: str, value_unit: str, q: prom.Dataquery):
    """Buckets as Prometheus counted them (format heatmap, no recalculation), one cell per bucket and time step: the
    y axis in the buckets' unit, the cells (and the panel's unit) in the counts' unit."""
    return (heatmap.Panel().title(title).description(description).unit(value_unit).with_target(q)
            .calculate(False).cell_gap(1)
            .color(heatmap.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME).scheme("Oranges")
                   .scale(hm.HeatmapColorScale.EXPONENTIAL).exponent(0.5).steps(64).fill("dark-orange").reverse(False))
            .y_axis(heatmap.YAxisConfig().unit(bucket_unit).axis_placement(cm.AxisPlacement.LEFT))
            .cell_values(heatmap.CellValues().unit(value_unit))
            .filter_values(heatmap.FilterValueRange().le(1e-9))
            .show_legend().mode(cm.TooltipDisplayMode.SINGLE).show_y_histogram())


def alert_list(title: str, description: str, label_filter: str = ""):
    """Alerts pending or firing, read from the Alertmanager data source (place it with datasource=ALERTMANAGER)."""
    return (db.Panel().type("alertlist").title(title).description(description).unit("none")
            .options({"alertInstanceLabelFilter": label_filter, "datasource": "${alertmanager}", "groupMode": "default",
                      "maxItems": 20, "sortOrder": 1, "stateFilter": {"firing": True, "pending": True, "normal": False},
                      "viewMode": "list"}))


def data_link(title: str, uid: str, variable: str) -> dict[str, object]:
    """A link from a table row to dashboard `uid` with its `variable` set to the row's field of that name; same
    cluster, data source and time range."""
    return {"title": title, "targetBlank": False,
            "url": f"/d/{uid}?var-{variable}=${{__data.fields.{variable}}}&${{datasource:queryparam}}&${{cluster:queryparam}}"
                   "&${__url_time_range}"}


def field_links(name: str, *links: dict[str, object]) -> tuple[str, list]:
    """The override of label field `name` that links each row to the dashboards of `links`."""
    return name, [prop("links", list(links))]


def panel_link(title: str, uid: str) -> Built:
    """A link in a panel's header to dashboard `uid`, same data source, cluster and time range."""
    return Built(dm.DashboardLink(title=title, type_val=dm.DashboardLinkType.LINK, icon="dashboard", tooltip=title,
                                  url=f"/d/{uid}?${{datasource:queryparam}}&${{cluster:queryparam}}&${{__url_time_range}}"))
