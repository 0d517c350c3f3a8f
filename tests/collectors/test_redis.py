"""The Redis collector: `sollol_redis_up` for an expected Redis, nothing for an absent one."""

from sollol_exporter.collectors.redis import RedisCollector
from sollol_exporter.presence import REDIS
from sollol_exporter.snapshot import RedisStatus, Snapshot, frozen
from tests.support.collect import rendered

WHERE = "localhost:6379"


def snapshot(up: bool, expected: bool | None) -> Snapshot:
    presence = {} if expected is None else {(REDIS, WHERE): expected}
    return Snapshot(now=0.0, budget=10.0, redis=RedisStatus(up, error="" if up else "refused"), expected=frozen(presence))


def test_an_expected_redis_is_up_or_down():
    assert rendered(RedisCollector(), snapshot(True, expected=True)) == {("sollol_redis_up", ()): 1.0}
    assert rendered(RedisCollector(), snapshot(False, expected=True)) == {("sollol_redis_up", ()): 0.0}


def test_an_absent_redis_renders_no_up_series():
    assert list(RedisCollector().collect(snapshot(False, expected=False))) == []


def test_a_snapshot_that_says_nothing_of_presence_treats_redis_as_expected():
    assert rendered(RedisCollector(), snapshot(False, expected=None)) == {("sollol_redis_up", ()): 0.0}
