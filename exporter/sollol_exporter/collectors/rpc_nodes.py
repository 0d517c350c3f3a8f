"""`sollol:rpc:node:{ip}:{port}`: workers registered by SOLLOL's setup scripts (inventory only, TTL 1 h)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from sollol_exporter.collectors.names import CollectorName


class RpcNodesCollector:
    name = CollectorName.RPC_NODES

    def collect(self, s):
        registered = GaugeMetricFamily("sollol_rpc_node_registered", "1 for each worker registration key present.", labels=["backend"])
        has_gpu = GaugeMetricFamily("sollol_rpc_node_has_gpu", "1 if the registration lists a GPU.", labels=["backend"])
        gpu_memory = GaugeMetricFamily(
            "sollol_rpc_node_gpu_memory_bytes", "GPU memory the registration offers (SOLLOL writes 80% of the card).", labels=["backend", "gpu", "name"]
        )
        cpu_memory = GaugeMetricFamily("sollol_rpc_node_cpu_memory_bytes", "CPU memory the registration offers (80% of MemTotal).", labels=["backend"])
        workers = GaugeMetricFamily("sollol_rpc_node_parallel_workers", "total_parallel_workers from the registration.", labels=["backend"])
        seen = set()
        for registration in s.registrations:
            backend = registration.backend
            if backend in seen:  # two keys spelling one address differently
                continue
            seen.add(backend)
            registered.add_metric([backend], 1.0)
            if registration.has_gpu is not None:
                has_gpu.add_metric([backend], registration.has_gpu)
            for index, name, amount in registration.gpu_memory:
                gpu_memory.add_metric([backend, index, name], amount)
            if registration.cpu_memory is not None:
                cpu_memory.add_metric([backend], registration.cpu_memory)
            if registration.parallel_workers is not None:
                workers.add_metric([backend], registration.parallel_workers)
        return [registered, has_gpu, gpu_memory, cpu_memory, workers]
