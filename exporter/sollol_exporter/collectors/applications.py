"""Applications registered with SOLLOL's dashboard. An app that stops heartbeating vanishes from the
registry; it is still reported with up 0 for `dashboard.forget_after` seconds (kept in the cluster state) so
that alerts can fire."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from sollol_exporter.collectors.names import CollectorName
from sollol_exporter.presence import DASHBOARD
from sollol_exporter.snapshot import is_expected


class ApplicationsCollector:
    name = CollectorName.APPLICATIONS

    def collect(self, s):
        reading = s.dashboard
        if reading is None or not is_expected(s, DASHBOARD):
            return []  # absent, not down (presence.py)
        dashboard_up = GaugeMetricFamily("sollol_dashboard_up", "1 if the dashboard service answered /api/applications.", value=1.0 if reading.up else 0.0)
        kind = GaugeMetricFamily("sollol_dashboard_info", "Which SOLLOL dashboard holds the port; always 1.", labels=["kind"])
        up = GaugeMetricFamily("sollol_application_up", "1 while the app heartbeats the dashboard; 0 once it has vanished.", labels=["app", "router_type"])
        uptime = GaugeMetricFamily("sollol_application_uptime_seconds", "Uptime the dashboard reports for the app.", labels=["app", "router_type"])
        heartbeat = GaugeMetricFamily("sollol_application_last_heartbeat_timestamp_seconds", "Last heartbeat the dashboard received.",
                                      labels=["app", "router_type"])
        info = GaugeMetricFamily("sollol_application_info", "App id and version; always 1.", labels=["app", "router_type", "app_id", "version"])
        if not reading.up:
            return [dashboard_up]
        if reading.kind:
            kind.add_metric([reading.kind], 1.0)
        for app in reading.applications:
            key = [app.label, app.router_type]
            up.add_metric(key, 1.0 if app.active else 0.0)
            if app.uptime is not None:
                uptime.add_metric(key, app.uptime)
            if app.last_heartbeat is not None:
                heartbeat.add_metric(key, app.last_heartbeat)
            info.add_metric([*key, app.app_id, app.version], 1.0)
        for key in reading.vanished:
            up.add_metric(list(key), 0.0)
        return [dashboard_up, kind, up, uptime, heartbeat, info]
