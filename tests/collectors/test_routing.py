"""The routing collector: decisions read from `sollol:routing_stream`, counted once each."""

from sollol_exporter.cluster import RoutingView
from sollol_exporter.collectors.routing import RoutingCollector
from sollol_exporter.snapshot import RedisStatus, Snapshot
from tests.support.collect import rendered


def snapshot(view: RoutingView | None, stream_length: int | None = None) -> Snapshot:
    return Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True, stream_length=stream_length), routing=view)


def test_events_and_selections_are_counted_per_type_and_node():
    view = RoutingView(events={"OLLAMA_NODE_SELECTED": 7.0, "ROUTING_DECISION": 3.0}, selections={"10.0.0.5:11434": 5.0, "other": 2.0},
                       invalid_total=1.0, last_event=1_700_000_000.5, folded_total=2.0)
    assert rendered(RoutingCollector(), snapshot(view, stream_length=1000)) == {
        ("sollol_routing_events_total", (("event_type", "OLLAMA_NODE_SELECTED"),)): 7.0,
        ("sollol_routing_events_total", (("event_type", "ROUTING_DECISION"),)): 3.0,
        ("sollol_routing_node_selections_total", (("node", "10.0.0.5:11434"),)): 5.0,
        ("sollol_routing_node_selections_total", (("node", "other"),)): 2.0,
        ("sollol_routing_invalid_events_total", ()): 1.0,
        ("sollol_routing_label_values_folded_total", ()): 2.0,
        ("sollol_routing_stream_entries", ()): 1000.0,
        ("sollol_routing_last_event_timestamp_seconds", ()): 1_700_000_000.5,
    }


def test_before_any_event_the_totals_are_0_and_no_time_is_made_up():
    view = RoutingView(events={}, selections={}, invalid_total=0.0, last_event=None, folded_total=0.0)
    assert rendered(RoutingCollector(), snapshot(view)) == {
        ("sollol_routing_invalid_events_total", ()): 0.0,
        ("sollol_routing_label_values_folded_total", ()): 0.0,
    }


def test_no_routing_view_renders_nothing():
    assert list(RoutingCollector().collect(snapshot(None))) == []
