"""The exporter's own collector: what every other collector skipped and left out."""

from sollol_exporter.collectors.exporter import ExporterCollector
from sollol_exporter.metadata import Current
from sollol_exporter.metadata import Reading as MetadataReading
from sollol_exporter.snapshot import RedisStatus, Snapshot, frozen
from sollol_exporter.sources.coordinator import Reading


def dropped_by_collector(snapshot) -> dict:
    family = next(f for f in ExporterCollector(["metadata", "coordinator", "gpu"]).collect(snapshot) if f.name == "sollol_exporter_dropped_entries")
    return {s.labels["collector"]: s.value for s in family.samples}


def test_what_the_snapshot_counts_as_left_out_is_rendered_per_collector():
    """The collection adds what the readings left out (the metadata key's targets, a coordinator's series) to the
    snapshot's counts; the collector renders them as they are, for every collector, 0 where nothing was left out."""
    snapshot = Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True), dropped=frozen({"gpu": 3, "metadata": 40, "coordinator": 502}),
                        metadata=Current(True, -1, "coordinator_manager", reading=MetadataReading("coordinator_manager", dropped_entries=40)),
                        coordinators=frozen({"a": Reading("ok", 0.1, dropped_entries=500)}))
    assert dropped_by_collector(snapshot) == {"metadata": 40, "coordinator": 502, "gpu": 3}


def test_nothing_left_out_is_zero():
    assert dropped_by_collector(Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True))) == {"metadata": 0, "coordinator": 0, "gpu": 0}
