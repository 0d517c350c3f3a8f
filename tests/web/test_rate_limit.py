"""The web config's rate_limit: a token bucket of `burst` requests refilled one per `interval`."""

from sollol_exporter.web import rate_limit
from sollol_exporter.web.rate_limit import RateLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_burst_is_allowed_then_one_request_per_interval(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(rate_limit.time, "monotonic", clock)
    limiter = RateLimiter()
    assert [limiter.allow(10.0, 3) for _ in range(4)] == [True, True, True, False]
    clock.now += 9.9
    assert not limiter.allow(10.0, 3)
    clock.now += 0.2
    assert limiter.allow(10.0, 3)
    assert not limiter.allow(10.0, 3)
    clock.now += 1000.0  # a long pause refills the bucket to its burst, no further
    assert [limiter.allow(10.0, 3) for _ in range(4)] == [True, True, True, False]


def test_no_interval_means_no_limit():
    limiter = RateLimiter()
    assert all(limiter.allow(0.0, 1) for _ in range(100))


def test_a_changed_setting_starts_a_full_bucket(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(rate_limit.time, "monotonic", clock)
    limiter = RateLimiter()
    assert limiter.allow(60.0, 1) and not limiter.allow(60.0, 1)
    assert [limiter.allow(60.0, 2) for _ in range(3)] == [True, True, False]


def test_a_limit_removed_then_restored_starts_a_full_bucket(monkeypatch):
    """As exporter-toolkit after a reload: the bucket of a limit that was taken away does not come back empty."""
    clock = Clock()
    monkeypatch.setattr(rate_limit.time, "monotonic", clock)
    limiter = RateLimiter()
    assert limiter.allow(3600.0, 1) and not limiter.allow(3600.0, 1)
    assert limiter.allow(0.0, 0) and limiter.allow(0.0, 0)  # the web config no longer sets rate_limit
    assert limiter.allow(3600.0, 1) and not limiter.allow(3600.0, 1)
