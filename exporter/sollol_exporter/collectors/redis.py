from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from sollol_exporter.collectors.names import CollectorName
from sollol_exporter.presence import REDIS
from sollol_exporter.snapshot import is_expected


class RedisCollector:
    name = CollectorName.REDIS

    def collect(self, s):
        if not is_expected(s, REDIS):
            return  # absent, not down: nothing has named or seen a Redis yet (presence.py)
        yield GaugeMetricFamily("sollol_redis_up", "1 if SOLLOL's Redis answered this scrape.", value=1.0 if s.redis.up else 0.0)
