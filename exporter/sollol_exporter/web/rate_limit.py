"""The web config's `rate_limit`, as exporter-toolkit has it: requests beyond it are answered 429."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """exporter-toolkit's rate_limit: a token bucket of `burst` tokens refilled one per `interval`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tokens = 0.0
        self.stamp = time.monotonic()
        self.setting = (0.0, 0)

    def allow(self, interval: float, burst: int) -> bool:
        with self.lock:
            if interval <= 0:  # no limit; one set again later starts with a full bucket
                self.setting = (0.0, 0)
                return True
            now = time.monotonic()
            if self.setting != (interval, burst):
                self.setting, self.tokens, self.stamp = (interval, burst), float(burst), now
            self.tokens = min(float(burst), self.tokens + (now - self.stamp) / interval)
            self.stamp = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True
