"""Ollama nodes: the exporter's own probe beside SOLLOL's view of the same node."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from sollol_exporter.collectors.names import CollectorName
from sollol_exporter.metadata import OLLAMA_POOL

OTHER = "other"
MIB = 1_048_576


class OllamaCollector:
    name = CollectorName.OLLAMA

    def __init__(self, max_models: int):
        self.max_models = max_models

    def collect(self, s):
        up = GaugeMetricFamily("sollol_ollama_node_up", "1 if the node answered GET / with 200.", labels=["node"])
        duration = GaugeMetricFamily("sollol_ollama_node_probe_duration_seconds", "Time GET / took.", labels=["node"])
        loaded = GaugeMetricFamily("sollol_ollama_node_loaded_models", "Models loaded in memory (/api/ps).", labels=["node"])
        info = GaugeMetricFamily("sollol_ollama_node_info", "Ollama version and where the node was found; always 1.", labels=["node", "version", "source"])
        size = GaugeMetricFamily("sollol_ollama_model_memory_bytes", "Memory a loaded model occupies (/api/ps size).", labels=["node", "model"])
        vram = GaugeMetricFamily("sollol_ollama_model_vram_bytes", "Part of it in GPU memory (/api/ps size_vram, Ollama's estimate).", labels=["node", "model"])
        expires = GaugeMetricFamily(
            "sollol_ollama_model_expiry_seconds", "Seconds until Ollama unloads the model (pinned models are capped at one year).", labels=["node", "model"]
        )
        for address, reading in sorted(s.ollama.items()):
            node = str(address)
            up.add_metric([node], 1.0 if reading.up else 0.0)
            duration.add_metric([node], reading.duration)
            info.add_metric([node, reading.version, ",".join(sorted(s.ollama_sources.get(address, ())))], 1.0)
            if not reading.up:
                continue
            loaded.add_metric([node], float(len(reading.models)))
            totals: dict[str, list[float]] = {}
            for position, model in enumerate(sorted(reading.models, key=lambda m: -m.size)):
                name = model.name if position < self.max_models else OTHER
                entry = totals.setdefault(name, [0.0, 0.0, model.expires_in])
                entry[0] += model.size
                entry[1] += model.size_vram
            for name, (memory, in_vram, expiry) in sorted(totals.items()):
                size.add_metric([node, name], memory)
                vram.add_metric([node, name], in_vram)
                if expiry is not None and name != OTHER:
                    expires.add_metric([node, name], expiry)
        return [up, duration, loaded, info, size, vram, expires, *self._sollol_view(s)]

    def _sollol_view(self, s):
        available = GaugeMetricFamily("sollol_ollama_node_available", "SOLLOL's own availability flag (rechecked only every 100 requests).", labels=["node"])
        requests = CounterMetricFamily("sollol_ollama_node_requests_total", "Requests SOLLOL's pool sent to the node.", labels=["node"])
        failed = CounterMetricFamily("sollol_ollama_node_failed_requests_total", "Requests to the node that failed, per SOLLOL.", labels=["node"])
        active = GaugeMetricFamily("sollol_ollama_node_active_requests", "Requests in flight to the node, per SOLLOL.", labels=["node"])
        success = GaugeMetricFamily("sollol_ollama_node_success_ratio", "Success ratio SOLLOL computed for the node.", labels=["node"])
        latency = GaugeMetricFamily(
            "sollol_ollama_node_reported_latency_seconds", "SOLLOL's latency figure (request mean mixed with /api/tags round trips).", labels=["node"]
        )
        gpu_free = GaugeMetricFamily("sollol_ollama_node_reported_gpu_free_bytes", "SOLLOL's estimate of free GPU memory.", labels=["node"])
        priority = GaugeMetricFamily("sollol_ollama_node_priority", "Routing priority SOLLOL gives the node.", labels=["node"])
        reading = next((r for r in s.fresh_readings if r.variant == OLLAMA_POOL), None)
        seen = set()
        for stats in reading.nodes if reading else []:
            node = str(stats.address)
            if node in seen:
                continue
            seen.add(node)
            v = stats.values
            for family, field, scale in (
                (available, "available", 1.0),
                (requests, "total_requests", 1.0),
                (failed, "failed_requests", 1.0),
                (active, "active_requests", 1.0),
                (success, "success_rate", 1.0),
                (latency, "latency_ms", 0.001),
                (gpu_free, "gpu_free_mem", MIB),
                (priority, "priority", 1.0),
            ):
                if field in v:
                    family.add_metric([node], v[field] * scale)
        return [available, requests, failed, active, success, latency, gpu_free, priority]
