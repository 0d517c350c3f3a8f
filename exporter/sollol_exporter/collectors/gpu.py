"""`sollol:gpu:{node}`: what each node's gpu_reporter last wrote (TTL 120 s, so a missing node = reporter down)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from sollol_exporter.collectors.names import CollectorName


class GpuCollector:
    name = CollectorName.GPU

    def collect(self, s):
        total = GaugeMetricFamily("sollol_gpu_memory_total_bytes", "GPU memory, as the node's gpu_reporter saw it.", labels=["node", "gpu"])
        free = GaugeMetricFamily("sollol_gpu_memory_free_bytes", "Free GPU memory.", labels=["node", "gpu"])
        used = GaugeMetricFamily("sollol_gpu_memory_used_bytes", "Used GPU memory.", labels=["node", "gpu"])
        utilization = GaugeMetricFamily("sollol_gpu_utilization_ratio", "GPU utilisation, 0 to 1.", labels=["node", "gpu"])
        temperature = GaugeMetricFamily("sollol_gpu_temperature_celsius", "GPU temperature.", labels=["node", "gpu"])
        info = GaugeMetricFamily("sollol_gpu_info", "GPU model and vendor; always 1.", labels=["node", "gpu", "name", "vendor"])
        devices = GaugeMetricFamily("sollol_gpu_devices", "GPUs the reporter lists (0 when Ollama runs on the CPU).", labels=["node"])
        cpu_only = GaugeMetricFamily("sollol_gpu_cpu_only", "1 when the reporter says Ollama uses no GPU on this node.", labels=["node"])
        reported = GaugeMetricFamily("sollol_gpu_report_timestamp_seconds", "When the reporter wrote this node's entry.", labels=["node"])
        by_field = {"memory_total": total, "memory_free": free, "memory_used": used, "utilization": utilization, "temperature": temperature}
        for report in s.gpu:
            devices.add_metric([report.node], float(len(report.gpus)))
            cpu_only.add_metric([report.node], 1.0 if report.vendor == "none" else 0.0)
            if report.timestamp is not None:
                reported.add_metric([report.node], report.timestamp)
            seen = set()
            for gpu in report.gpus:
                if gpu.index in seen:  # two entries claim one index: keep the first (the reading counted it invalid)
                    continue
                seen.add(gpu.index)
                for field_name, amount in gpu.values.items():
                    by_field[field_name].add_metric([report.node, gpu.index], amount)
                info.add_metric([report.node, gpu.index, gpu.name, report.vendor], 1.0)
        return [total, free, used, utilization, temperature, info, devices, cpu_only, reported]
