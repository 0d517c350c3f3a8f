"""The exporter's own health: build, which collectors worked, how long they took."""

from __future__ import annotations

import platform

from prometheus_client.core import GaugeMetricFamily

from sollol_exporter import __version__


class ExporterCollector:
    name = "exporter"

    def __init__(self, collector_names: list[str]):
        self.collector_names = collector_names

    def collect(self, g):
        info = GaugeMetricFamily("sollol_exporter_build_info", "Exporter version; always 1.", labels=["version", "python_version"])
        info.add_metric([__version__, platform.python_version()], 1.0)
        success = GaugeMetricFamily(
            "sollol_exporter_collector_success", "1 if the collector read its source without error this scrape.", labels=["collector"]
        )
        duration = GaugeMetricFamily(
            "sollol_exporter_collector_duration_seconds", "Time the collector took this scrape.", labels=["collector"]
        )
        invalid = GaugeMetricFamily(
            "sollol_exporter_invalid_entries",
            "Entries skipped this scrape because they were malformed (bad address, wrong type, unparseable).",
            labels=["collector"],
        )
        for name in self.collector_names:
            success.add_metric([name], 0.0 if name in g.failures else 1.0)
            duration.add_metric([name], g.durations.get(name, 0.0))
            invalid.add_metric([name], float(g.invalid.get(name, 0)))
        budget = GaugeMetricFamily(
            "sollol_exporter_scrape_timeout_seconds",
            "Time budget of this scrape (Prometheus' scrape timeout minus the margin, or scrape.timeout).",
            value=g.budget,
        )
        return [info, success, duration, invalid, budget]
