"""`sollol:router:metadata`: which writer wrote it, how old it is, and the router statistics it carries."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from sollol_exporter.collectors.names import CollectorName
from sollol_exporter.metadata import VARIANTS

_QUANTILES = (("0.5", "p50_latency_ms"), ("0.95", "p95_latency_ms"), ("0.99", "p99_latency_ms"))


def _gauge(name, documentation, labels=()):
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class MetadataCollector:
    name = CollectorName.METADATA

    def collect(self, s):
        current = s.metadata
        if current is None:
            return []
        families = [GaugeMetricFamily("sollol_metadata_present", "1 if sollol:router:metadata exists.", value=float(current.present))]
        if current.present:
            info = _gauge("sollol_metadata_info", "Which SOLLOL writer wrote the key last; always 1.", ["variant", "source", "router_type"])
            reading = current.reading
            info.add_metric([current.variant, reading.source if reading else "", reading.router_type if reading else ""], 1.0)
            families.append(info)
            if current.age is not None:
                families.append(
                    GaugeMetricFamily(
                        "sollol_metadata_age_seconds",
                        "Age of the value: its timestamp, else what its writer's TTL says, else how long this exporter has seen it unchanged.",
                        value=current.age,
                    )
                )
            if current.ttl is not None and current.ttl >= 0:
                families.append(GaugeMetricFamily("sollol_metadata_ttl_seconds", "TTL left on the key (absent when it has none).", value=float(current.ttl)))
        seen = _gauge("sollol_metadata_variant_last_seen_timestamp_seconds", "When each writer's layout was last read from the key.", ["variant"])
        for variant in VARIANTS:
            if variant in s.metadata_readings:
                seen.add_metric([variant], s.metadata_readings[variant].seen_at)
        families.append(seen)
        families.extend(self._router(s.fresh_readings))
        return families

    def _router(self, readings):
        latency = Metric(
            "sollol_router_latency_seconds",
            "Request latency: quantiles over SOLLOL's last 1000 requests; count and sum since the router started.",
            "summary",
        )
        success = _gauge("sollol_router_success_ratio", "Successful / total requests since the router started.", ["source"])
        requests = CounterMetricFamily("sollol_router_requests_total", "Requests the router handled since it started.", labels=["source"])
        successful = CounterMetricFamily("sollol_router_successful_requests_total", "Successful requests since the router started.", labels=["source"])
        average = _gauge("sollol_router_average_duration_seconds", "Mean request duration.", ["source"])
        nodes_configured = _gauge("sollol_pool_nodes_configured", "Ollama nodes configured in the pool.", ["source"])
        hits = CounterMetricFamily("sollol_pool_cache_hits_total", "Response cache hits.", labels=["source"])
        misses = CounterMetricFamily("sollol_pool_cache_misses_total", "Response cache misses.", labels=["source"])
        evictions = CounterMetricFamily("sollol_pool_cache_evictions_total", "Response cache evictions.", labels=["source"])
        entries = _gauge("sollol_pool_cache_entries", "Entries in the response cache.", ["source"])
        capacity = _gauge("sollol_pool_cache_capacity_entries", "Capacity of the response cache.", ["source"])
        router_nodes = _gauge("sollol_router_nodes", "Nodes SynapticLlamas' router knows, by kind (total, healthy, gpu).", ["kind"])
        decisions = CounterMetricFamily("sollol_router_routing_decisions_total", "Routing decisions SynapticLlamas made.")
        routing_time = _gauge("sollol_router_average_routing_time_seconds", "Mean time SynapticLlamas spends on a routing decision.")
        task_types = CounterMetricFamily(
            "sollol_router_task_type_requests_total", "Requests per detected task type (SynapticLlamas' learned patterns).", labels=["task_type"]
        )
        ray_pools = _gauge("sollol_ray_router_pools", "Ray pools of RayHybridRouter (written once at router start).")
        ray_backends = _gauge("sollol_ray_router_backends", "RPC backends RayHybridRouter was started with.")
        by_source = {}
        for reading in readings:
            if reading.analytics or reading.pool:
                by_source.setdefault(reading.source or reading.variant, reading)
        for source, reading in sorted(by_source.items()):
            a = reading.analytics
            for quantile, field in _QUANTILES:
                if field in a:
                    latency.add_sample("sollol_router_latency_seconds", {"source": source, "quantile": quantile}, a[field] / 1000.0)
            if "total_requests" in a:
                latency.add_sample("sollol_router_latency_seconds_count", {"source": source}, a["total_requests"])
                if "avg_duration_ms" in a:
                    latency.add_sample("sollol_router_latency_seconds_sum", {"source": source}, a["total_requests"] * a["avg_duration_ms"] / 1000.0)
            _add(success, [source], a.get("success_rate"))
            _add(requests, [source], a.get("total_requests"))
            _add(successful, [source], a.get("successful_requests"))
            _add(average, [source], _seconds(a.get("avg_duration_ms")))
            p = reading.pool
            _add(nodes_configured, [source], p.get("nodes_configured"))
            _add(hits, [source], p.get("cache_hits"))
            _add(misses, [source], p.get("cache_misses"))
            _add(evictions, [source], p.get("cache_evictions"))
            _add(entries, [source], p.get("cache_size"))
            _add(capacity, [source], p.get("cache_max_size"))
        for reading in readings:
            s = reading.synaptic
            for kind, field in (("total", "total_nodes"), ("healthy", "healthy_nodes"), ("gpu", "gpu_nodes")):
                _add(router_nodes, [kind], s.get(field))
            _add(decisions, [], s.get("routing_decisions"))
            _add(routing_time, [], _seconds(s.get("avg_routing_time_ms")))
            for task_type, count in sorted(reading.task_types.items()):
                task_types.add_metric([task_type], count)
            _add(ray_pools, [], reading.ray.get("num_pools"))
            _add(ray_backends, [], reading.ray.get("total_backends"))
        return [latency, success, requests, successful, average, nodes_configured, hits, misses, evictions, entries,
                capacity, router_nodes, decisions, routing_time, task_types, ray_pools, ray_backends]


def _seconds(milliseconds):
    return None if milliseconds is None else milliseconds / 1000.0


def _add(family, labels, value):
    if value is not None and not any(tuple(labels) == tuple(s.labels.values()) for s in family.samples):
        family.add_metric(labels, value)
