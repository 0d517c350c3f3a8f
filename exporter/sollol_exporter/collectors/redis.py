from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily


class RedisCollector:
    name = "redis"

    def collect(self, s):
        yield GaugeMetricFamily("sollol_redis_up", "1 if SOLLOL's Redis answered this scrape.", value=1.0 if s.redis.up else 0.0)
