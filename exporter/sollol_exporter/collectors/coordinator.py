"""llama-server coordinators: state, probe time, and its own /metrics under sollol_coordinator_*."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from sollol_exporter.collectors.events import COORDINATOR_FAMILIES
from sollol_exporter.collectors.names import CollectorName
from sollol_exporter.presence import COORDINATOR
from sollol_exporter.sources.coordinator import COORDINATOR_STATES, COORDINATOR_UP_STATES

ABSENT = "absent"
# The exporter's own coordinator families; a series from a llama-server's /metrics may not take one of these names,
# nor a name whose histogram or counter parts would (a hostile or future llama-server could otherwise forge them).
OWN_FAMILIES = frozenset({
    "sollol_coordinator_up", "sollol_coordinator_state", "sollol_coordinator_probe_duration_seconds",
    "sollol_coordinator_metrics_enabled", "sollol_coordinator_metrics_up", "sollol_coordinator_build_info",
    "sollol_coordinator_slots", "sollol_coordinator_sleeping", *COORDINATOR_FAMILIES,
})
_PARTS = ("_total", "_bucket", "_sum", "_count", "_created", "_info")


def reserved(full: str) -> bool:
    """True if `full` is, or is a part of, a family the exporter itself emits."""
    return full in OWN_FAMILIES or any(full.removesuffix(part) in OWN_FAMILIES or full.removesuffix(part) + "_total" in OWN_FAMILIES
                                       for part in _PARTS if full.endswith(part)) or full + "_total" in OWN_FAMILIES


class CoordinatorCollector:
    name = CollectorName.COORDINATOR

    def collect(self, s):
        up = GaugeMetricFamily("sollol_coordinator_up", "1 if llama-server answers /health (ok, loading or stalled).", labels=["coordinator"])
        state = GaugeMetricFamily(
            "sollol_coordinator_state",
            "One-hot state: ok, loading (503 Loading model), stalled (/health ok, /metrics timed out), hung (/health timed out), unreachable, error; "
            "absent: a default address where nothing has answered and that neither the config file nor SOLLOL names.",
            labels=["coordinator", "state"],
        )
        duration = GaugeMetricFamily("sollol_coordinator_probe_duration_seconds", "Time the coordinator probe took.", labels=["coordinator"])
        enabled = GaugeMetricFamily(
            "sollol_coordinator_metrics_enabled", "1 if llama-server serves /metrics (started with --metrics), 0 if it answers 501.", labels=["coordinator"]
        )
        metrics_up = GaugeMetricFamily("sollol_coordinator_metrics_up", "1 if /metrics was read and parsed this scrape.", labels=["coordinator"])
        build = GaugeMetricFamily("sollol_coordinator_build_info", "llama-server build from /props; always 1.", labels=["coordinator", "build"])
        slots = GaugeMetricFamily("sollol_coordinator_slots", "Parallel slots (/props total_slots).", labels=["coordinator"])
        sleeping = GaugeMetricFamily("sollol_coordinator_sleeping", "1 if llama-server has unloaded its model after idling.", labels=["coordinator"])
        passed: dict[str, list] = {}  # full name -> [(coordinator, sample)]
        for name, reading in sorted(s.coordinators.items()):
            present = s.expected.get((COORDINATOR, name), True)
            for each in (*COORDINATOR_STATES, ABSENT):
                state.add_metric([name, each], 1.0 if each == (reading.state if present else ABSENT) else 0.0)
            if not present:
                continue  # absent, not down (presence.py): no up series that an alert could fire on
            up.add_metric([name], 1.0 if reading.state in COORDINATOR_UP_STATES else 0.0)
            duration.add_metric([name], reading.duration)
            if reading.metrics_enabled is not None:
                enabled.add_metric([name], reading.metrics_enabled)
            metrics_up.add_metric([name], reading.metrics_up)
            if reading.build:
                build.add_metric([name, reading.build], 1.0)
            if reading.slots is not None:
                slots.add_metric([name], reading.slots)
            if reading.sleeping is not None:
                sleeping.add_metric([name], reading.sleeping)
            for sample in reading.samples:
                full = "sollol_coordinator_" + sample.name
                if reserved(full):
                    continue  # a peer's series must not collide with (or forge) the exporter's own families
                passed.setdefault(full, []).append((name, sample))
        return [up, state, duration, enabled, metrics_up, build, slots, sleeping, *_passed_through(passed)]


def _passed_through(passed: dict[str, list]) -> list:
    """One family per name with the labels of all its samples: a label one coordinator's series lack is empty
    (absent, to Prometheus), so no coordinator's label names can keep another's series out."""
    families = []
    for full, entries in sorted(passed.items()):
        names = sorted({label for _, sample in entries for label in sample.labels})
        first = entries[0][1]
        kind = CounterMetricFamily if first.kind == "counter" else GaugeMetricFamily
        family = kind(full, first.help, labels=["coordinator", *names])
        for coordinator, sample in entries:
            family.add_metric([coordinator, *(sample.labels.get(label, "") for label in names)], sample.value)
        families.append(family)
    return families
