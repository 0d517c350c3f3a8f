"""SOLLOL exporter health: is the exporter itself reading every source, and within its scrape budget?"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import common as cm

from mixin.config import Config
from mixin.dashboards.panels import (
    Column,
    instant,
    mapping,
    place,
    prop,
    query,
    series_panel,
    stat_panel,
    table_panel,
    timeline_panel,
)
from mixin.dashboards.promql import Selectors
from mixin.dashboards.scaffold import dashboard, with_panels


def exporter_health(cfg: Config) -> db.Dashboard:
    sel = Selectors(cfg)
    dash = dashboard(sel, "sollol-exporter", "Is the exporter itself reading every source, and within its scrape budget?")
    i, series = cfg.instance_label, sel.series
    per_instance = f"{{{{{i}}}}}"  # the legend {{instance}}, by the configured label name

    def per_channel(counter: str) -> str:
        return f"sum by (channel) (rate({series(counter)}[$__rate_interval]))"

    return with_panels(dash, [
        place(timeline_panel("Collector success", "Per collector: OK when it read its source without error in a scrape.",
                             f"max by (collector) ({series('sollol_exporter_collector_success')})", "{{collector}}",
                             {"1": ("OK", "green"), "0": ("FAILING", "red")}), 0, 0, 24, 7),
        place(series_panel("Collector duration", "Time each collector took per scrape.", "s",
                           query(f"max by (collector) ({series('sollol_exporter_collector_duration_seconds')})", "{{collector}}")), 0, 7, 12, 8),
        place(series_panel("Scrape budget used", "Slowest collector as a share of the scrape's time budget.", "percentunit",
                           query(f"max by ({i}) ({series('sollol_exporter_collector_duration_seconds')}) / on ({i}) "
                                 f"max by ({i}) ({series('sollol_exporter_scrape_timeout_seconds')})", per_instance)), 12, 7, 12, 8),
        place(series_panel("Malformed entries", "Entries skipped per scrape because they were malformed.", "none",
                           query(f"sum by (collector) ({series('sollol_exporter_invalid_entries')})", "{{collector}}")), 0, 15, 12, 7),
        place(series_panel("Exporter memory", "Resident memory of the exporter process.", "bytes",
                           query(f"max by ({i}) ({series('process_resident_memory_bytes')})", per_instance)), 12, 15, 12, 7),
        place(timeline_panel("Event subscriber", "SUBSCRIBED while the exporter holds its subscription to SOLLOL's activity "
                             "channels; events published while it is not are never counted.",
                             f"max by ({i}) ({series('sollol_events_subscribed')})", per_instance,
                             {"1": ("SUBSCRIBED", "green"), "0": ("NOT SUBSCRIBED", "red")}), 0, 22, 24, 5),
        place(series_panel("Events received per second", "Messages per second on each of SOLLOL's channels (ollama, rpc, traces).", "ops",
                           query(per_channel("sollol_events_received_total"), "{{channel}}")), 0, 27, 12, 8),
        place(series_panel("Invalid events per second", "Messages per channel that were not a SOLLOL event (bad JSON, too large "
                           "or deep, unknown type): counted and skipped.", "ops",
                           query(per_channel("sollol_events_invalid_total"), "{{channel}}")), 12, 27, 12, 8),
        place(series_panel("Time since the last event", "How long ago each channel last carried a message: silence while SOLLOL "
                           "serves means it stopped publishing, or the subscription is broken.", "s",
                           query(f"time() - max by (channel) ({series('sollol_events_last_received_timestamp_seconds')})", "{{channel}}")), 0, 35, 12, 7),
        place(series_panel("Label values folded", "Events whose node, model or coordinator was counted as \"other\" because the "
                           "label reached its cap of distinct values.", "none",
                           query(f"sum by (label) (increase({series('sollol_events_label_values_folded_total')}[$__rate_interval]))", "{{label}}")),
              12, 35, 12, 7),
        place(table_panel("Targets", "Every Redis, coordinator and dashboard address the exporter knows of: EXPECTED (named in "
                          "the config, announced by SOLLOL, or answered since the exporter started) or ABSENT (a default "
                          "address where nothing was ever found: it has no _up series and raises no alert).", "none",
                          Column(f"max by (kind, target) ({series('sollol_exporter_target_expected')})", "State"),
                          mappings=mapping({"1": ("EXPECTED", "green"), "0": ("ABSENT", "text")})), 0, 42, 24, 7),
        place(series_panel("Entries dropped by caps", "Entries each collector left out this scrape because one of the exporter's "
                           "caps was reached (keys per prefix, devices per node, applications; see the README).", "none",
                           query(f"sum by (collector) ({series('sollol_exporter_dropped_entries')})", "{{collector}}")), 0, 49, 12, 7),
        place(stat_panel("Configuration", "Whether the last config (re)load worked, and how long ago a config last loaded.", "none",
                         instant(f"min by ({i}) ({series('sollol_exporter_config_last_reload_successful')})", "last reload"),
                         instant(f"time() - max by ({i}) ({series('sollol_exporter_config_last_reload_success_timestamp_seconds')})", "loaded", "B"),
                         mappings=mapping({"1": ("OK", "green"), "0": ("FAILED", "red")}))
              .override_by_query("B", [prop("unit", "s"), prop("mappings", [])]), 12, 49, 6, 7),
        place(stat_panel("Dashboard service", "Which server answers on SOLLOL's dashboard address: dashboard_service, "
                         "unified_dashboard or legacy_dashboard.", "none",
                         instant(f"max by (kind) ({series('sollol_dashboard_info')})", "{{kind}}")).text_mode(cm.BigValueTextMode.NAME), 18, 49, 6, 7),
        place(stat_panel("Routing stream", "sollol:routing_stream as the exporter reads it: entries (XLEN), time since the newest "
                         "routing event, entries that were not routing events, and events whose type or node was folded into "
                         "\"other\" (per second).", "none",
                         instant(f"max({series('sollol_routing_stream_entries')})", "entries"),
                         instant(f"time() - max({series('sollol_routing_last_event_timestamp_seconds')})", "since the last event", "B"),
                         instant(f"sum(rate({series('sollol_routing_invalid_events_total')}[$__rate_interval]))", "invalid", "C"),
                         instant(f"sum(rate({series('sollol_routing_label_values_folded_total')}[$__rate_interval]))", "folded", "D"))
              .override_by_query("B", [prop("unit", "s")]).override_by_query("C", [prop("unit", "ops")])
              .override_by_query("D", [prop("unit", "ops")]), 0, 56, 16, 5),
        place(series_panel("Subscription losses", "Established subscriptions to SOLLOL's channels that ended (Redis closed or "
                           "restarted, or stopped answering): the events published until the exporter subscribed again are "
                           "missing from the request counts, and from the SLOs, of that time.", "none",
                           query(f"sum by ({i}) (increase({series('sollol_events_subscription_losses_total')}[$__rate_interval]))", per_instance)),
              16, 56, 8, 5),
    ])
