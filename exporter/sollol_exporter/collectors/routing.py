"""`sollol:routing_stream`: routing decisions, counted once each (in the cluster state), from the position seen
at start-up onwards."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from sollol_exporter.collectors.names import CollectorName


class RoutingCollector:
    name = CollectorName.ROUTING

    def collect(self, s):
        if s.routing is None:
            return []
        view = s.routing
        events = CounterMetricFamily("sollol_routing_events_total", "Routing events read from sollol:routing_stream since the exporter started.",
                                     labels=["event_type"])
        for event_type, count in sorted(view.events.items()):
            events.add_metric([event_type], count)
        selections = CounterMetricFamily("sollol_routing_node_selections_total", "OLLAMA_NODE_SELECTED events per node.", labels=["node"])
        for node, count in sorted(view.selections.items()):
            selections.add_metric([node], count)
        invalid = CounterMetricFamily("sollol_routing_invalid_events_total", "Stream entries that were not a routing event.", value=view.invalid_total)
        folded = CounterMetricFamily(
            "sollol_routing_label_values_folded_total", "Routing events whose event type or node was counted as \"other\" (200 values each).",
            value=view.folded_total,
        )
        families = [events, selections, invalid, folded]
        if s.redis.stream_length is not None:
            families.append(GaugeMetricFamily("sollol_routing_stream_entries", "Entries in sollol:routing_stream (XLEN).", value=float(s.redis.stream_length)))
        if view.last_event is not None:
            families.append(GaugeMetricFamily("sollol_routing_last_event_timestamp_seconds", "Time of the newest routing event read.", value=view.last_event))
        return families
