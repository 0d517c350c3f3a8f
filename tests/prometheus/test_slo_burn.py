"""The node-availability SLO end to end: the real SOLLOL (an OllamaPool in its own environment) sends requests to two
Ollama stand-ins, one of which fails every second request; the exporter counts SOLLOL's events and a real
Prometheus evaluates the shipped SLO rules and burn-rate alerts (`for:` shortened to 2 s, rules every second).

With minutes of data, every window of the workbook's alert holds the same data: a rate over [1h] (or [30d]) of a
series a minute old is the rate over that minute. So the failing node's page alert goes pending as soon as its
5-minute window holds enough requests to pass the low-traffic guard, while its ticket alert cannot yet (its guard
reads the 2-hour window, which needs 360 requests); the healthy node, which also takes the retries, never burns.
SOLLOL retries every failed attempt on the other node, so the application's own SLO (final outcomes) stays at 0."""

from __future__ import annotations

import time

import pytest

from tests.prometheus.test_cluster_shapes import Stack
from tests.support.net import wait_for
from tests.support.replay import ReplayServer, ollama_routes
from tests.support.sollol_package import RunningCluster

BURNS = 'alertname=~"Sollol.*Burn"'


@pytest.fixture
def stack(tmp_path):
    made = Stack(tmp_path)
    yield made
    made.stop()


def one(prometheus, expr: str) -> float | None:
    found = prometheus.query(expr)
    assert len(found) <= 1, found
    return float(found[0]["value"][1]) if found else None


def test_a_node_failing_half_its_requests_pages_and_a_healthy_one_does_not(stack, redis_db, tmp_path):
    healthy, failing = (stack.add(ReplayServer(ollama_routes())) for _ in range(2))
    failing.routes["/api/chat"].fail_every = 2
    exporter = stack.exporter(redis_db.url)
    prometheus = stack.prometheus(exporter)
    started = time.time()
    stack.add(RunningCluster({"redis_port": redis_db.port, "nodes": [healthy.port, failing.port], "period": 0.2},
                             redis_db.url, log_dir=tmp_path))

    page = f'ALERTS{{alertname="SollolNodeAvailabilityFastBurn",node="{failing.address}"}}'
    alert = wait_for(lambda: prometheus.query(page), 75, interval=0.5, what="the failing node's page alert")[0]["metric"]
    assert alert["alertstate"] in ("pending", "firing")
    assert (alert["severity"], alert["sloth_severity"], alert["sloth_slo"]) == ("critical", "page", "node-availability")

    node_sli = 'slo:sli_error:ratio_rate{window}{{sloth_slo="node-availability",node="{node}"}}'
    for window in ("5m", "1h"):
        ratio = one(prometheus, node_sli.format(window=window, node=failing.address))
        assert ratio is not None and 0.3 < ratio < 0.7, (window, ratio)  # half of its attempts, far above 14.4 x 1%
        assert one(prometheus, node_sli.format(window=window, node=healthy.address)) == 0  # 0, not absent
    assert failing.routes["/api/chat"].served.get(500, 0) >= 5 and healthy.routes["/api/chat"].served.get(500, 0) == 0

    # the healthy node never burned, not even pending; no ticket yet for the failing one (its guard needs 2 hours' worth)
    window = int(time.time() - started) + 1
    assert prometheus.query(f'count_over_time(ALERTS{{{BURNS},node="{healthy.address}"}}[{window}s])') == []
    assert prometheus.query(f'ALERTS{{alertname="SollolNodeAvailabilitySlowBurn",node="{failing.address}"}}') == []
    # every request succeeded in the end (retried on the healthy node): the application's SLO does not burn. OllamaPool
    # writes its counters every 5 s, so its ratio is 0/0 until two writes apart are scraped. SOLLOL counts a request
    # when it starts and its success when it ends, so the one request the cluster may have in flight at a write shows
    # as not (yet) successful: the SLI is that one request over the few in a short test's window, or 0
    application = 'slo:sli_error:ratio_rate5m{sloth_slo="application-availability"} >= 0'
    [ratio] = [float(s["value"][1]) for s in wait_for(lambda: prometheus.query(application), 30, interval=0.5,
                                                      what="the application's SLI")]
    unfinished = 'sum(sollol_router_requests_total) - sum(sollol_router_successful_requests_total)'
    assert one(prometheus, unfinished) in (0.0, 1.0), ratio  # requests run one at a time: failed ones would add up
    assert prometheus.query(f'count_over_time(ALERTS{{alertname=~"SollolApplicationAvailability.*"}}[{window}s])') == []
