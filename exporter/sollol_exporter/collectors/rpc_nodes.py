"""`sollol:rpc:node:{ip}:{port}`: workers registered by SOLLOL's setup scripts (inventory only, TTL 1 h)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from sollol_exporter.labels import parse_address, sanitize
from sollol_exporter.values import BadValue, decode_json, flag, items, number, text

MIB = 1_048_576


class RpcNodesCollector:
    name = "rpc_nodes"

    def collect(self, g):
        registered = GaugeMetricFamily("sollol_rpc_node_registered", "1 for each worker registration key present.", labels=["backend"])
        has_gpu = GaugeMetricFamily("sollol_rpc_node_has_gpu", "1 if the registration lists a GPU.", labels=["backend"])
        gpu_memory = GaugeMetricFamily(
            "sollol_rpc_node_gpu_memory_bytes", "GPU memory the registration offers (SOLLOL writes 80% of the card).", labels=["backend", "gpu", "name"]
        )
        cpu_memory = GaugeMetricFamily("sollol_rpc_node_cpu_memory_bytes", "CPU memory the registration offers (80% of MemTotal).", labels=["backend"])
        workers = GaugeMetricFamily("sollol_rpc_node_parallel_workers", "total_parallel_workers from the registration.", labels=["backend"])
        invalid = 0
        for suffix, value in sorted(g.redis.rpc_nodes.items()):
            try:
                backend = str(parse_address(suffix, 50052))
            except ValueError:
                invalid += 1
                continue
            try:
                if value.error:
                    raise BadValue(value.error)
                doc = decode_json(value.raw, f"sollol:rpc:node:{backend}")
                if not isinstance(doc, dict):
                    raise BadValue("not a JSON object")
            except BadValue as err:
                invalid += 1
                g.fail(self.name, f"sollol:rpc:node:{backend}: {err}")
                continue
            registered.add_metric([backend], 1.0)
            gpu = flag(doc.get("has_gpu"))
            if gpu is not None:
                has_gpu.add_metric([backend], gpu)
            names = items(doc.get("gpu_names"))
            for index, megabytes in enumerate(items(doc.get("gpu_vram_mb"))[:64]):
                amount = number(megabytes)
                if amount is None:
                    invalid += 1
                    continue
                name = sanitize(text(names[index]) if index < len(names) and text(names[index]) else "unknown", 64)
                gpu_memory.add_metric([backend, str(index), name], amount * MIB)
            for family, field, scale in ((cpu_memory, "cpu_ram_mb", MIB), (workers, "total_parallel_workers", 1.0)):
                amount = number(doc.get(field))
                if amount is not None:
                    family.add_metric([backend], amount * scale)
        g.count_invalid(self.name, invalid)
        return [registered, has_gpu, gpu_memory, cpu_memory, workers]
