"""`sollol:routing_stream`: routing decisions, counted once each, from the position seen at start-up onwards."""

from __future__ import annotations

from datetime import datetime, timezone

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from sollol_exporter.labels import parse_address, sanitize
from sollol_exporter.values import BadValue, decode_json, text

MAX_EVENT_BYTES = 65_536
MAX_LABEL_VALUES = 200
OTHER = "other"


class RoutingCollector:
    name = "routing"

    def __init__(self) -> None:
        self.events: dict[str, float] = {}
        self.selections: dict[str, float] = {}
        self.invalid_total = 0.0
        self.last_event: float | None = None

    def _count(self, table: dict[str, float], key: str) -> None:
        if key not in table and len(table) >= MAX_LABEL_VALUES:
            key = OTHER
        table[key] = table.get(key, 0.0) + 1.0

    def _add(self, raw: bytes | None) -> bool:
        if raw is None or len(raw) > MAX_EVENT_BYTES:
            return False
        try:
            event = decode_json(raw, "routing event")
        except BadValue:
            return False
        if not isinstance(event, dict) or not text(event.get("event_type")):
            return False
        self._count(self.events, sanitize(event["event_type"], 64))
        if event["event_type"] == "OLLAMA_NODE_SELECTED":
            try:
                self._count(self.selections, str(parse_address(event.get("node_url"), 11434)))
            except ValueError:
                pass
        stamp = text(event.get("timestamp"))
        if stamp:
            try:
                moment = datetime.fromisoformat(stamp)
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=timezone.utc)  # SOLLOL writes naive UTC
                self.last_event = max(self.last_event or 0.0, moment.timestamp())
            except ValueError:
                pass
        return True

    def collect(self, g):
        bad = sum(0 if self._add(raw) else 1 for raw in g.redis.routing_events)
        self.invalid_total += bad
        g.count_invalid(self.name, bad)
        events = CounterMetricFamily("sollol_routing_events_total", "Routing events read from sollol:routing_stream since the exporter started.", labels=["event_type"])
        for event_type, count in sorted(self.events.items()):
            events.add_metric([event_type], count)
        selections = CounterMetricFamily("sollol_routing_node_selections_total", "OLLAMA_NODE_SELECTED events per node.", labels=["node"])
        for node, count in sorted(self.selections.items()):
            selections.add_metric([node], count)
        invalid = CounterMetricFamily("sollol_routing_invalid_events_total", "Stream entries that were not a routing event.", value=self.invalid_total)
        families = [events, selections, invalid]
        if g.redis.routing_stream_length is not None:
            families.append(GaugeMetricFamily("sollol_routing_stream_entries", "Entries in sollol:routing_stream (XLEN).", value=float(g.redis.routing_stream_length)))
        if self.last_event is not None:
            families.append(GaugeMetricFamily("sollol_routing_last_event_timestamp_seconds", "Time of the newest routing event read.", value=self.last_event))
        return families
