"""SOLLOL SLOs: every SLO series (one per node, model, coordinator and model, or application) by the labels that name
it, its error budget, how fast it burns over each window the burn-rate alerts read, and which of them fire. The
series are Sloth's (mixin/slos.py); sloth_id joins a series to its SLO's constants."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import common as cm

from mixin.config import Config
from mixin.dashboards.panels import (
    ALERTMANAGER,
    Built,
    Column,
    alert_list,
    field_links,
    instant,
    mapping,
    place,
    prop,
    query,
    series_panel,
    stat_panel,
    table_panel,
    thresholds,
)
from mixin.dashboards.promql import Selectors
from mixin.dashboards.scaffold import (
    COORDINATOR_AND_WORKERS,
    REQUESTS_FOR_MODEL,
    REQUESTS_TO_NODE,
    dashboard,
    filter_variable,
    with_panels,
)
from mixin.slos import sli_windows

SLO_F = 'sloth_slo=~"$slo"'
SLO_BY = "sloth_id, sloth_slo, node, model, coordinator, source"
SLO_LEGEND = "{{sloth_slo}} {{node}}{{coordinator}} {{model}}{{source}}"
YEAR = 365 * 86400
# Burn rates are multiples of the sustainable rate: the multiplication sign, not the letter x.
BURN_UNIT = "suffix:×"  # noqa: RUF001
# Error budget left: spent below 0, running low below a quarter.
BUDGET_COLOURS = ((None, "red"), (0, "orange"), (0.25, "green"))
# Each SLO series' row links to its node's, model's or coordinator's dashboard; sloth_id only joins.
SLO_FIELDS = [field_links("node", REQUESTS_TO_NODE), field_links("model", REQUESTS_FOR_MODEL),
              field_links("coordinator", COORDINATOR_AND_WORKERS), ("sloth_id", [prop("custom.hidden", True)])]


def slo_dashboard(cfg: Config) -> db.Dashboard:
    sel = Selectors(cfg)
    dash = dashboard(sel, "sollol-slo", f"Every SLO ({cfg.slo_window} window): how much error budget is left, how fast it "
                     "burns over each window the burn-rate alerts read, and which of those alerts fire.", alerts=True)
    dash = dash.with_variable(filter_variable("slo", "SLO", f'label_values(sloth_slo_info{{sloth_service="{cfg.slo_service}"}}, sloth_slo)'))
    remaining = sel.recorded("slo:period_error_budget_remaining:ratio", SLO_F)
    sli_error = sel.recorded(f"slo:sli_error:ratio_rate{cfg.slo_window}", SLO_F)

    def burn_rate(window: str) -> str:
        """Error ratio over `window` / error budget; Sloth records it for 5 minutes (current) and the SLO window (period)."""
        recorded = {"5m": "slo:current_burn_rate:ratio", cfg.slo_window: "slo:period_burn_rate:ratio"}
        if window in recorded:
            return f"max by ({SLO_BY}) ({sel.recorded(recorded[window], SLO_F)})"
        return f"max by ({SLO_BY}) ({sel.recorded(f'slo:sli_error:ratio_rate{window}', SLO_F)} / on (sloth_id) group_left slo:error_budget:ratio)"

    def firing(severity: str) -> str:
        return sel.recorded("ALERTS", 'alertstate="firing"', f'sloth_service="{cfg.slo_service}"', f'sloth_severity="{severity}"', SLO_F)

    windows = [*sli_windows(cfg), cfg.slo_window]  # the alerts' windows, then the SLO's
    alert_state = mapping({"2": ("PAGE", "red"), "1": ("TICKET", "orange"), "0": ("—", "green")})
    return with_panels(dash, [
        place(stat_panel("Worst budget left", f"The least error budget left over the {cfg.slo_window} window among the selected "
                         "SLOs; below 0 the objective is already missed.", "percentunit",
                         instant(f"min({remaining})")).thresholds(thresholds(*BUDGET_COLOURS)), 0, 0, 6, 4),
        place(stat_panel("SLOs out of budget", "SLO series (a node, model, coordinator or application) whose error budget is "
                         "spent.", "none",
                         instant(f"count({remaining} < 0) or 0 * count({remaining})"))
              .thresholds(thresholds((None, "green"), (1, "red"))), 6, 0, 6, 4),
        place(stat_panel("Fastest burn (1 hour)", "The highest burn rate over the last hour: 1 spends the budget exactly over "
                         f"the {cfg.slo_window} window, 14.4 (with the last 5 minutes) pages.", BURN_UNIT,
                         instant(f"max({burn_rate('1h')})"))
              .thresholds(thresholds((None, "green"), (1, "orange"), (6, "red"))), 12, 0, 6, 4),
        place(stat_panel("Burn alerts firing", "Page (fast burn) and ticket (slow burn) alerts firing for the selected SLOs.", "none",
                         instant(f"count({firing('page')}) or 0 * count({remaining})", "page"),
                         instant(f"count({firing('ticket')}) or 0 * count({remaining})", "ticket", "B"))
              .thresholds(thresholds((None, "green"), (1, "red"))), 18, 0, 6, 4),
        place(table_panel(
            "SLOs by budget left", f"Every SLO series, least budget first: its objective, the SLI (share of good events) over the "
            f"{cfg.slo_window} window, the error budget left, the burn rate over the last hour, when the budget is gone at that "
            "rate, and the burn alert firing. Nodes, models and coordinators link to their dashboards.", "none",
            Column(f"max by ({SLO_BY}) ({remaining})", "Budget left", "percentunit",
                   props=(prop("thresholds", {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in BUDGET_COLOURS]}),
                          prop("custom.cellOptions", {"type": "color-text"}))),
            Column(f"group by ({SLO_BY}) ({remaining}) * on (sloth_id) group_left slo:objective:ratio", "Objective", "percentunit", decimals=2),
            Column(f"1 - max by ({SLO_BY}) ({sli_error})", f"SLI ({cfg.slo_window})", "percentunit", decimals=3),
            Column(burn_rate("1h"), "Burn rate (1h)", BURN_UNIT),
            Column(f"clamp_max(clamp_min(max by ({SLO_BY}) ({remaining}), 0) * on (sloth_id) group_left slo:time_period:days * 86400 "
                   f"/ {burn_rate('1h')}, {YEAR})", "Budget gone in", "s",
                   mappings=[{"type": "value", "options": {str(YEAR): {"text": "not at this rate"}}},
                             {"type": "special", "options": {"match": "nan", "result": {"text": "no traffic"}}}]),
            Column(f"max by ({SLO_BY}) ({firing('page')} * 0 + 2 or {firing('ticket')} * 0 + 1) "
                   f"or group by ({SLO_BY}) ({remaining}) * 0", "Burn alert", mappings=alert_state),
            fields=SLO_FIELDS)
              .sort_by([Built(cm.TableSortByFieldState(display_name="Budget left", desc=False))]), 0, 4, 24, 10),
        place(table_panel(
            "Burn rate per window", "How fast each SLO series burns its error budget over every window the alerts read (1: the "
            f"budget lasts exactly the {cfg.slo_window} window). Pages: 14.4 over 1h and 5m, or 6 over 6h and 30m; tickets: 3 "
            "over 1d and 2h, or 1 over 3d and 6h.", BURN_UNIT,
            *(Column(burn_rate(window), window) for window in windows),
            fields=SLO_FIELDS).thresholds(thresholds((None, "green"), (1, "orange"), (6, "red"))), 0, 14, 24, 8),
        place(series_panel("SLI against objective", f"The share of good events over the {cfg.slo_window} window per SLO series, "
                           "and each SLO's objective: below its objective, an SLO is missed.", "percentunit",
                           query(f"1 - max by ({SLO_BY}) ({sli_error})", SLO_LEGEND),
                           query(f"max by (sloth_slo) (group by (sloth_id, sloth_slo) ({remaining}) * on (sloth_id) group_left slo:objective:ratio)",
                                 "{{sloth_slo}} objective", "B")), 0, 22, 12, 8),
        place(series_panel("Error budget left", f"The share of each SLO series' error budget left over the {cfg.slo_window} window "
                           "(while there is less data than a window, over the data there is).", "percentunit",
                           query(f"max by ({SLO_BY}) ({remaining})", SLO_LEGEND)), 12, 22, 12, 8),
        place(series_panel("Burn rate (1 hour)", "How fast each SLO series burns its error budget over the last hour: above 1 it "
                           f"is gone before the {cfg.slo_window} window ends.", BURN_UNIT,
                           query(burn_rate("1h"), SLO_LEGEND)), 0, 30, 12, 8),
        place(alert_list("Burn alerts", "Burn-rate alerts pending or firing (via the Alertmanager data source): Sollol*FastBurn pages, "
                         "Sollol*SlowBurn opens a ticket.", f'{{sloth_service="{cfg.slo_service}"}}'), 12, 30, 12, 8, datasource=ALERTMANAGER),
    ])
