"""`sollol:gpu:{node}`: what each node's gpu_reporter last wrote (TTL 120 s, so a missing node = reporter down)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from sollol_exporter.labels import sanitize
from sollol_exporter.values import BadValue, decode_json, items, number, text

MIB = 1_048_576


class GpuCollector:
    name = "gpu"

    def collect(self, g):
        total = GaugeMetricFamily("sollol_gpu_memory_total_bytes", "GPU memory, as the node's gpu_reporter saw it.", labels=["node", "gpu"])
        free = GaugeMetricFamily("sollol_gpu_memory_free_bytes", "Free GPU memory.", labels=["node", "gpu"])
        used = GaugeMetricFamily("sollol_gpu_memory_used_bytes", "Used GPU memory.", labels=["node", "gpu"])
        utilization = GaugeMetricFamily("sollol_gpu_utilization_ratio", "GPU utilisation, 0 to 1.", labels=["node", "gpu"])
        temperature = GaugeMetricFamily("sollol_gpu_temperature_celsius", "GPU temperature.", labels=["node", "gpu"])
        info = GaugeMetricFamily("sollol_gpu_info", "GPU model and vendor; always 1.", labels=["node", "gpu", "name", "vendor"])
        devices = GaugeMetricFamily("sollol_gpu_devices", "GPUs the reporter lists (0 when Ollama runs on the CPU).", labels=["node"])
        cpu_only = GaugeMetricFamily("sollol_gpu_cpu_only", "1 when the reporter says Ollama uses no GPU on this node.", labels=["node"])
        reported = GaugeMetricFamily("sollol_gpu_report_timestamp_seconds", "When the reporter wrote this node's entry.", labels=["node"])
        invalid = 0
        for node_id, value in sorted(g.redis.gpu.items()):
            node = sanitize(node_id)
            try:
                if value.error:
                    raise BadValue(value.error)
                doc = decode_json(value.raw, f"sollol:gpu:{node}")
                if not isinstance(doc, dict):
                    raise BadValue("not a JSON object")
            except BadValue as err:
                invalid += 1
                g.fail(self.name, f"sollol:gpu:{node}: {err}")
                continue
            vendor = sanitize(text(doc.get("vendor")) or "unknown", 32)
            gpus = [d for d in items(doc.get("gpus"))[:64] if isinstance(d, dict)]
            invalid += len(items(doc.get("gpus"))[:64]) - len(gpus)
            devices.add_metric([node], float(len(gpus)))
            cpu_only.add_metric([node], 1.0 if vendor == "none" else 0.0)
            stamp = number(doc.get("timestamp"))
            if stamp is not None:
                reported.add_metric([node], stamp)
            for position, gpu in enumerate(gpus):
                index = number(gpu.get("index"))
                label = str(int(index)) if index is not None else str(position)
                for family, field, scale in (
                    (total, "memory_total_mb", MIB),
                    (free, "memory_free_mb", MIB),
                    (used, "memory_used_mb", MIB),
                    (utilization, "utilization_percent", 0.01),
                    (temperature, "temperature_c", 1.0),
                ):
                    amount = number(gpu.get(field))
                    if amount is not None:
                        family.add_metric([node, label], amount * scale)
                    elif field in gpu:
                        invalid += 1
                info.add_metric([node, label, sanitize(text(gpu.get("name")) or "unknown", 64), vendor], 1.0)
        g.count_invalid(self.name, invalid)
        return [total, free, used, utilization, temperature, info, devices, cpu_only, reported]
