"""Applications registered with SOLLOL's dashboard. An app that stops heartbeating vanishes from the
registry; this collector keeps reporting it with up 0 for `forget_after` seconds so that alerts can fire."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily


class ApplicationsCollector:
    name = "applications"

    def __init__(self, forget_after: float):
        self.forget_after = forget_after
        self.known: dict[tuple[str, str], float] = {}

    def collect(self, g):
        reading = g.dashboard
        dashboard_up = GaugeMetricFamily("sollol_dashboard_up", "1 if the dashboard service answered /api/applications.", value=1.0 if reading.up else 0.0)
        kind = GaugeMetricFamily("sollol_dashboard_info", "Which SOLLOL dashboard holds the port; always 1.", labels=["kind"])
        up = GaugeMetricFamily("sollol_application_up", "1 while the app heartbeats the dashboard; 0 once it has vanished.", labels=["app", "router_type"])
        uptime = GaugeMetricFamily("sollol_application_uptime_seconds", "Uptime the dashboard reports for the app.", labels=["app", "router_type"])
        heartbeat = GaugeMetricFamily("sollol_application_last_heartbeat_timestamp_seconds", "Last heartbeat the dashboard received.", labels=["app", "router_type"])
        info = GaugeMetricFamily("sollol_application_info", "App id and version; always 1.", labels=["app", "router_type", "app_id", "version"])
        if not reading.up:
            g.fail(self.name, f"dashboard: {reading.detail}")
            return [dashboard_up]
        if reading.kind:
            kind.add_metric([reading.kind], 1.0)
        g.count_invalid(self.name, reading.invalid_entries)
        names = {}
        for app in reading.applications:
            names[app.name] = names.get(app.name, 0) + 1
        present = set()
        for app in sorted(reading.applications, key=lambda a: (a.name, a.app_id)):
            label = app.name if names[app.name] == 1 else f"{app.name} ({app.app_id[:8]})"
            key = (label, app.router_type)
            if key in present:
                continue
            present.add(key)
            self.known[key] = g.now
            up.add_metric(list(key), 1.0 if app.active else 0.0)
            if app.uptime is not None:
                uptime.add_metric(list(key), app.uptime)
            if app.last_heartbeat is not None:
                heartbeat.add_metric(list(key), app.last_heartbeat)
            info.add_metric([*key, app.app_id, app.version], 1.0)
        for key, last_seen in list(self.known.items()):
            if key in present:
                continue
            if g.now - last_seen > self.forget_after:
                del self.known[key]
            else:
                up.add_metric(list(key), 0.0)
        return [dashboard_up, kind, up, uptime, heartbeat, info]
