"""Request-level metrics from SOLLOL's live events, and the subscriber's own health."""

from __future__ import annotations

from itertools import accumulate

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from sollol_exporter.collectors.names import CollectorName
from sollol_exporter.events.counts import BUCKETS

# Families this collector owns under sollol_coordinator_*: a llama-server series of the same name is not re-exported.
COORDINATOR_FAMILIES = frozenset({
    "sollol_coordinator_requests_total", "sollol_coordinator_request_duration_seconds",
    "sollol_coordinator_completion_tokens_total", "sollol_coordinator_lifecycle_events_total",
    "sollol_coordinator_rpc_backends_active", "sollol_coordinator_rpc_backends_configured",
})
_BOUNDS = [repr(float(b)) for b in BUCKETS] + ["+Inf"]


def _histogram(family: HistogramMetricFamily, labels: list[str], histogram) -> None:
    cumulative = list(accumulate(histogram.counts))
    family.add_metric(labels, list(zip(_BOUNDS, (float(c) for c in cumulative), strict=True)), histogram.sum)


class EventsCollector:
    name = CollectorName.EVENTS

    def collect(self, s):
        view = s.events
        if view is None:
            return []
        subscribed = GaugeMetricFamily("sollol_events_subscribed", "1 while the exporter is subscribed to SOLLOL's event channels.",
                                       value=1.0 if view.subscribed else 0.0)
        losses = CounterMetricFamily("sollol_events_subscription_losses_total",
                                     "Subscriptions to SOLLOL's event channels that ended (Redis closed them, e.g. past its output buffer limit, or they "
                                     "failed): events published until the next one are not counted.",
                                     value=view.subscription_losses)
        received = CounterMetricFamily("sollol_events_received_total", "Messages received per channel since the exporter started.", labels=["channel"])
        invalid = CounterMetricFamily("sollol_events_invalid_total", "Messages that were not a SOLLOL event (bad JSON, too large or deep, unknown type).",
                                      labels=["channel"])
        last = GaugeMetricFamily("sollol_events_last_received_timestamp_seconds", "When the last message arrived on each channel.", labels=["channel"])
        folded = CounterMetricFamily("sollol_events_label_values_folded_total",
                                     "Events whose node, model or coordinator (label), or whole label set (label_set), was folded into \"other\" by a cap.",
                                     labels=["label"])
        for channel, count in sorted(view.received.items()):
            received.add_metric([channel], count)
            invalid.add_metric([channel], view.invalid.get(channel, 0.0))
            last.add_metric([channel], view.last_received[channel])
        for label, count in sorted(view.folded.items()):
            folded.add_metric([label], count)

        requests = CounterMetricFamily("sollol_requests_total",
                                       "Requests SOLLOL sent to Ollama nodes, by outcome and whether the answer was streamed (from its activity events).",
                                       labels=["node", "model", "operation", "outcome", "streaming"])
        for key, count in sorted(view.requests.items()):
            requests.add_metric(list(key), count)
        duration = HistogramMetricFamily("sollol_request_duration_seconds",
                                         "Latency of successful requests to Ollama nodes, as SOLLOL measured it (a stream's is its whole generation).",
                                         labels=["node", "model", "operation", "streaming"])
        for key, histogram in sorted(view.durations.items()):
            _histogram(duration, list(key), histogram)
        errors = CounterMetricFamily("sollol_request_errors_total",
                                     "Failed requests to Ollama nodes by reason (http_5xx, http_4xx, timeout, connection, other).",
                                     labels=["node", "model", "reason"])
        for key, count in sorted(view.errors.items()):
            errors.add_metric(list(key), count)

        c_requests = CounterMetricFamily("sollol_coordinator_requests_total", "Requests SOLLOL sent to llama.cpp coordinators, by outcome.",
                                         labels=["coordinator", "model", "outcome"])
        for key, count in sorted(view.coordinator_requests.items()):
            c_requests.add_metric(list(key), count)
        c_duration = HistogramMetricFamily("sollol_coordinator_request_duration_seconds", "Latency of successful coordinator requests, as SOLLOL measured it.",
                                           labels=["coordinator", "model"])
        for key, histogram in sorted(view.coordinator_durations.items()):
            _histogram(c_duration, list(key), histogram)
        tokens = CounterMetricFamily("sollol_coordinator_completion_tokens_total",
                                     "Completion tokens of coordinator requests, where SOLLOL's event carries them.", labels=["coordinator", "model"])
        for key, count in sorted(view.coordinator_tokens.items()):
            tokens.add_metric(list(key), count)
        lifecycle = CounterMetricFamily("sollol_coordinator_lifecycle_events_total", "Coordinator start, stop, restart and model-load events SOLLOL published.",
                                        labels=["coordinator", "event"])
        for key, count in sorted(view.lifecycle.items()):
            lifecycle.add_metric(list(key), count)
        active = GaugeMetricFamily("sollol_coordinator_rpc_backends_active", "RPC workers the coordinator's last heartbeat reported in use.",
                                   labels=["coordinator"])
        for name, count in sorted(view.workers_active.items()):
            active.add_metric([name], count)
        configured = GaugeMetricFamily("sollol_coordinator_rpc_backends_configured", "RPC workers configured, per the last heartbeat that says.",
                                       labels=["coordinator"])
        for name, count in sorted(view.workers_configured.items()):
            configured.add_metric([name], count)
        return [subscribed, losses, received, invalid, last, folded, requests, duration, errors, c_requests, c_duration, tokens, lifecycle, active, configured]
