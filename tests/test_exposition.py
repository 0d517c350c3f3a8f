"""The fast encoders write exactly what prometheus_client writes, for every format a scraper can ask for."""

from __future__ import annotations

import math

import pytest
from prometheus_client import exposition as client
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    StateSetMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.samples import Exemplar

from sollol_exporter import exposition
from sollol_exporter.addresses import Address
from sollol_exporter.collectors.rpc_backends import RpcBackendsCollector
from sollol_exporter.probes import OK, REFUSED, TIMEOUT, ProbeResult, Target
from sollol_exporter.snapshot import Backend, RedisStatus, Snapshot, frozen

ACCEPT = [
    "",
    "*/*",
    "text/plain;version=0.0.4",
    "text/plain;version=1.0.0;escaping=allow-utf-8",
    "text/plain;version=1.0.0;escaping=underscores",
    "text/plain;version=1.0.0;escaping=dots",
    "text/plain;version=1.0.0;escaping=values",
    # Prometheus 2's and 3's own scrape Accept headers
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,"
     "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
    "application/openmetrics-text",
    "application/openmetrics-text;version=1.0.0;escaping=dots",
    "application/openmetrics-text;version=1.0.0;escaping=values",
]
HOSTILE = ['plain', 'a"quote', "back\\slash", "new\nline", 'all \\ " \n of them', "ünïcødé ✓", "", "{x=\"y\"}", "trailing\\"]
VALUES = [0.0, -0.0, 1.0, 1, True, False, 0, 2.5, -3.25, 1e-7, 123456.75, 999999.5, 1e6, 1.5e6, 1e21, -1e21, 12345678.0,
          math.inf, -math.inf, math.nan, 0.1 + 0.2]


class Families:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def gauges():
    no_labels = GaugeMetricFamily("plain_gauge", 'help with \\ and " and\nnewline')
    for v in VALUES:
        no_labels.add_metric([], v)
    one = GaugeMetricFamily("one_label", "one", labels=["backend"])
    two = GaugeMetricFamily("two_labels", "two, given in reverse order", labels=["state", "backend"])
    three = GaugeMetricFamily("three_labels", "three", labels=["zeta", "alpha", "mid"])
    for index, text in enumerate(HOSTILE):
        one.add_metric([text], VALUES[index])
        two.add_metric([text, f"b{index}"], VALUES[-index])
        three.add_metric([text, text, f"m{index}"], float(index))
    return [no_labels, one, two, three, GaugeMetricFamily("empty_gauge", "no samples", labels=["x"])]


def unusual():
    """Families that take prometheus_client's own path (whole, or from the sample that needs it)."""
    counter = CounterMetricFamily("requests", "a counter", labels=["code"], created=1_700_000_000.0)
    counter.add_metric(["200"], 7.0, created=1_700_000_000.5)
    counter.add_metric(["500"], 1.0, timestamp=1_700_000_001.0)
    histogram = HistogramMetricFamily("latency_seconds", "a histogram", labels=["op"])
    histogram.add_metric(["get"], [("0.1", 2.0), ("1.0", 5.0), ("+Inf", 6.0)], 3.5)
    summary = SummaryMetricFamily("size_bytes", "a summary", count_value=3, sum_value=12.0)
    info = InfoMetricFamily("build", "an info", value={"version": "1.2.3", "revision": 'a"b'})
    states = StateSetMetricFamily("mode", "a state set", value={"on": True, "off": False})
    with_unit = GaugeMetricFamily("temperature_celsius", "a gauge with a unit", value=21.5, unit="celsius")
    stamped = GaugeMetricFamily("stamped", "a gauge with a timestamp in its second sample", labels=["x"])
    stamped.add_metric(["a"], 1.0)
    stamped.add_metric(["b"], 2.0, timestamp=1_700_000_000.25)
    bad_label = GaugeMetricFamily("bad_label_name", "a label name that needs escaping", labels=["ok", "not-ok"])
    bad_label.add_metric(["1", "2"], 1.0)
    reserved = GaugeMetricFamily("reserved_label", "a reserved label name", labels=["__reserved"])
    reserved.add_metric(["x"], 1.0)
    colon = GaugeMetricFamily("job:requests:rate5m", "a recording-rule style name", value=3.0)
    other_name = GaugeMetricFamily("odd_gauge", "a sample named otherwise")
    other_name.add_sample("odd_gauge_created", {}, 1.0)
    exemplar = CounterMetricFamily("with_exemplar", "a counter with an exemplar", labels=["a"])
    exemplar.add_sample("with_exemplar_total", {"a": "x"}, 3.0, None, Exemplar({"trace_id": "abc"}, 1.0, 1_700_000_000.0))
    return [counter, histogram, summary, info, states, with_unit, stamped, bad_label, reserved, colon, other_name, exemplar]


def worker_families():
    """The bulk of a real scrape: the rpc_backends collector over a thousand workers."""
    backends = {}
    for index in range(1000):
        address = Address(f"10.0.{index // 250}.{index % 250}", 50052)
        outcome, state = [(OK, "reachable"), (REFUSED, "refused"), (TIMEOUT, "unreachable")][index % 3]
        backends[address] = Backend(Target(address), "tcp", frozenset({"metadata"}), frozenset({"main"}),
                                    ProbeResult(outcome, index / 7919), state)
    return RpcBackendsCollector().collect(Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True), backends=frozen(backends)))


@pytest.mark.parametrize("accept", ACCEPT)
def test_same_bytes_and_content_type_as_prometheus_client(accept):
    families = Families(gauges() + unusual() + worker_families())
    theirs, their_type = client.choose_encoder(accept)
    ours, our_type = exposition.choose_encoder(accept)
    assert our_type == their_type
    expected = theirs(families)
    assert ours(families) == expected
    assert ours(families) == expected  # again, now from the lines kept since the last scrape


@pytest.mark.parametrize("accept", ["*/*", "application/openmetrics-text;version=1.0.0"])
def test_gauges_take_the_short_path(accept, monkeypatch):
    """Plain gauges never reach prometheus_client's formatting; a family that needs it does, alone."""
    calls = []
    for module in (exposition.client_text, exposition.client_openmetrics):
        original = module.generate_latest
        monkeypatch.setattr(module, "generate_latest", lambda registry, *a, _original=original, **k: calls.append(
            [m.name for m in registry.collect()]) or _original(registry, *a, **k))
    ours, _ = exposition.choose_encoder(accept)
    ours(Families(gauges() + worker_families()))
    assert calls == []
    ours(Families([*gauges(), unusual()[0], *worker_families()]))
    assert calls == [["requests"]]


def test_nothing_to_write():
    assert exposition.choose_encoder("*/*")[0](Families([])) == b""
    assert exposition.choose_encoder("application/openmetrics-text")[0](Families([])) == b"# EOF\n"


def test_a_kept_sample_is_written_from_its_line_and_a_new_one_afresh():
    """Between scrapes a collector keeps some samples and replaces others (a new probe time, a new state): each
    scrape writes exactly what it was given."""
    encoder, _ = exposition.choose_encoder("*/*")
    kept = GaugeMetricFamily("kept_gauge", "kept", labels=["backend"])
    kept.add_metric(["a"], 1.0)
    first = GaugeMetricFamily("changing_gauge", "changing", labels=["backend"])
    first.add_metric(["a"], 0.25)
    assert encoder(Families([kept, first])) == client.generate_latest(Families([kept, first]))
    second = GaugeMetricFamily("changing_gauge", "changing", labels=["backend"])
    second.add_metric(["a"], 0.5)  # same labels, another value, another sample object
    again = GaugeMetricFamily("kept_gauge", "kept", labels=["backend"])
    again.samples = kept.samples  # the very same sample objects
    assert encoder(Families([again, second])) == client.generate_latest(Families([again, second]))
    assert b'changing_gauge{backend="a"} 0.5' in encoder(Families([again, second]))
