"""The exporter's own health: build, which collectors worked, how long they took, what they skipped."""

from __future__ import annotations

import platform

from prometheus_client.core import GaugeMetricFamily

from sollol_exporter import __version__
from sollol_exporter.build import revision
from sollol_exporter.collectors.names import CollectorName


class ExporterCollector:
    name = CollectorName.EXPORTER

    def __init__(self, collector_names: list[str]):
        self.collector_names = collector_names

    def collect(self, s):
        info = GaugeMetricFamily(
            "sollol_exporter_build_info", "Exporter version, the commit it was built from and its Python; always 1.",
            labels=["version", "revision", "python_version"],
        )
        info.add_metric([__version__, revision(), platform.python_version()], 1.0)
        success = GaugeMetricFamily(
            "sollol_exporter_collector_success", "1 if the collector read its source without error this scrape.", labels=["collector"]
        )
        duration = GaugeMetricFamily(
            "sollol_exporter_collector_duration_seconds", "Time the collector's source took this scrape.", labels=["collector"]
        )
        invalid = GaugeMetricFamily(
            "sollol_exporter_invalid_entries",
            "Entries skipped this scrape because they were malformed (bad address, wrong type, unparseable, too deep, repeated).",
            labels=["collector"],
        )
        dropped = GaugeMetricFamily(
            "sollol_exporter_dropped_entries",
            "Entries left out this scrape because a cap was reached (keys per prefix, Redis byte and parse budgets, devices per "
            "node, applications, targets named by the metadata key, series of a coordinator's /metrics).",
            labels=["collector"],
        )
        for name in self.collector_names:
            success.add_metric([name], 0.0 if name in s.failures else 1.0)
            duration.add_metric([name], s.durations.get(name, 0.0))
            invalid.add_metric([name], float(s.invalid.get(name, 0)))
            dropped.add_metric([name], float(s.dropped.get(name, 0)))
        budget = GaugeMetricFamily(
            "sollol_exporter_scrape_timeout_seconds",
            "Time budget of this scrape (Prometheus' scrape timeout minus the margin, or scrape.timeout).",
            value=s.budget,
        )
        expected = GaugeMetricFamily(
            "sollol_exporter_target_expected",
            "1 if the part is expected (named in the config file, announced by SOLLOL, or answered since start): it then has "
            "an _up series; 0 if it is absent (a default address where nothing answers).",
            labels=["kind", "target"],
        )
        for (kind, name), is_expected in sorted(s.expected.items()):
            expected.add_metric([kind, name], 1.0 if is_expected else 0.0)
        return [info, success, duration, invalid, dropped, budget, expected]

