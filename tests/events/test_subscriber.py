"""The exporter subscribed to SOLLOL's event channels on a real redis-server: counting, outages, reloads, abuse."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import redis

from sollol_exporter.events.counts import EventCounts
from sollol_exporter.events.subscriber import Subscriber
from tests.support.collect import events_only_config
from tests.support.exporter import series, value
from tests.support.net import free_port, stop_process, wait_for
from tests.support.sollol_events import OLLAMA_CHANNEL as OLLAMA
from tests.support.sollol_events import RPC_CHANNEL as RPC
from tests.support.sollol_events import interleaved, ollama_error, ollama_response, streamed_request, unary_request
from tests.support.tls import make_certificates


def response(node="10.0.0.5:11434", model="llama3.2:3b", latency_ms=842.1, operation="chat"):
    return ollama_response(node, model, latency_ms, operation)


def error(node="10.0.0.5:11434", model="llama3.2:3b", message="HTTP 500"):
    return ollama_error(node, model, message)


def requests_of(samples, outcome, node="10.0.0.5:11434", model="llama3.2:3b", operation="chat", streaming="false"):
    return value(samples, "sollol_requests_total", node=node, model=model, operation=operation, outcome=outcome, streaming=streaming)


def subscribed(exporter, expected: float) -> bool:
    return value(exporter.scrape(), "sollol_events_subscribed") == expected


def _config(url):
    return events_only_config(url)


def test_published_requests_are_counted_per_node_model_and_outcome(start_exporter, redis_db):
    exporter = start_exporter(_config(redis_db.url))
    wait_for(lambda: subscribed(exporter, 1), 10, what="subscribed")
    for _ in range(7):
        redis_db.client.publish(OLLAMA, response())
    for _ in range(2):
        redis_db.client.publish(OLLAMA, error())
    redis_db.client.publish(OLLAMA, response(latency_ms=40_000.0, operation="generate"))
    wait_for(lambda: requests_of(exporter.scrape(), "error", operation="unknown") == 2, 10, what="errors counted")
    samples = exporter.scrape()
    assert requests_of(samples, "success") == 7
    assert requests_of(samples, "success", operation="generate") == 1
    assert value(samples, "sollol_request_errors_total", node="10.0.0.5:11434", model="llama3.2:3b", reason="http_5xx") == 2
    labels = {"node": "10.0.0.5:11434", "model": "llama3.2:3b", "operation": "chat", "streaming": "false"}
    assert value(samples, "sollol_request_duration_seconds_count", **labels) == 7
    assert value(samples, "sollol_request_duration_seconds_bucket", le="1.0", **labels) == 7
    assert value(samples, "sollol_request_duration_seconds_bucket", le="0.5", **labels) == 0
    assert value(samples, "sollol_events_received_total", channel="ollama") == 10


def test_streamed_requests_are_exported_apart_and_a_failed_stream_once(start_exporter, redis_db):
    exporter = start_exporter(_config(redis_db.url))
    wait_for(lambda: subscribed(exporter, 1), 10, what="subscribed")
    node, model, now = "10.0.0.5:11434", "llama3.2:3b", time.time()
    messages = interleaved(streamed_request(node, model, now, 12_000.0), streamed_request(node, model, now + 0.05, 40.0, "HTTP 500"),
                           unary_request(node, model, now + 0.06, 300.0))
    for message in messages:
        redis_db.client.publish(OLLAMA, message)
    wait_for(lambda: value(exporter.scrape(), "sollol_events_received_total", channel="ollama") == len(messages), 10, what="received")
    samples = exporter.scrape()
    errors = {dict(labels)["streaming"]: count for labels, count in series(samples, "sollol_requests_total").items() if dict(labels)["outcome"] == "error"}
    assert errors == {"true": 1}
    assert value(samples, "sollol_request_errors_total", node=node, model=model, reason="http_5xx") == 1
    assert requests_of(samples, "success", streaming="true") == 1 and requests_of(samples, "success") == 1
    streamed = {"node": node, "model": model, "operation": "chat", "streaming": "true"}
    assert value(samples, "sollol_request_duration_seconds_bucket", le="10.0", **streamed) == 0
    assert value(samples, "sollol_request_duration_seconds_bucket", le="20.0", **streamed) == 1
    assert value(samples, "sollol_request_duration_seconds_count", **{**streamed, "streaming": "false"}) == 1


def test_a_redis_restart_unsubscribes_then_resubscribes_and_keeps_the_counts(start_exporter, own_redis):
    exporter = start_exporter(_config(own_redis.url))
    wait_for(lambda: subscribed(exporter, 1), 10, what="subscribed")
    own_redis.client.publish(OLLAMA, response())
    wait_for(lambda: requests_of(exporter.scrape(), "success") == 1, 10, what="first event")
    stop_process(own_redis.process)
    wait_for(lambda: subscribed(exporter, 0), 15, what="unsubscribed while Redis is down")
    samples = exporter.scrape()
    assert requests_of(samples, "success") == 1
    assert value(samples, "sollol_exporter_collector_success", collector="events") == 0
    wait_for(lambda: exporter.read_log().count("events subscription failed, retrying") == 1, 10, what="a reconnection failed")
    time.sleep(1.6)  # two more attempts (back-off 0.5 s, then 1 s): failing to reconnect is not another loss
    own_redis.start()
    wait_for(lambda: subscribed(exporter, 1), 30, what="subscribed again")
    own_redis.client.publish(OLLAMA, response())
    wait_for(lambda: requests_of(exporter.scrape(), "success") == 2, 10, what="counting resumed")
    assert value(exporter.scrape(), "sollol_events_subscription_losses_total") == 1
    log = exporter.read_log()
    assert "Traceback" not in log
    assert log.count("events subscription lost") == 1 and log.count("events subscription failed, retrying") == 1
    assert log.count("events subscription restored") == 1


def test_sighup_keeps_every_counter_and_does_not_double_count(start_exporter, redis_db):
    config = _config(redis_db.url)
    exporter = start_exporter(config)
    wait_for(lambda: subscribed(exporter, 1), 10, what="subscribed")
    for _ in range(3):
        redis_db.client.publish(OLLAMA, response())
    wait_for(lambda: requests_of(exporter.scrape(), "success") == 3, 10, what="counted")
    config["ollama"]["timeout"] = "2s"
    exporter.write_config(config)
    exporter.reload()
    wait_for(lambda: "config reloaded" in exporter.read_log(), 10, what="reload")
    samples = exporter.scrape()
    assert value(samples, "sollol_exporter_config_last_reload_successful") == 1
    assert requests_of(samples, "success") == 3
    assert redis_db.client.publish(OLLAMA, response()) == 1  # one subscriber: the old one was not left behind
    wait_for(lambda: requests_of(exporter.scrape(), "success") == 4, 10, what="counted after the reload")


def test_hostile_events_are_counted_as_invalid_and_never_stop_the_subscriber(start_exporter, redis_db):
    exporter = start_exporter(_config(redis_db.url))
    wait_for(lambda: subscribed(exporter, 1), 10, what="subscribed")
    hostile = [b"\x00\xff" * 10, b"[" * 30_000 + b"]" * 30_000, b"{" * 200, b"x" * 200_000, b"null", b"[]",
               json.dumps({"event_type": "ollama_response", "backend": "<script>", "details": "x"}).encode(),
               json.dumps({"event_type": "ollama_response", "backend": "10.0.0.5:11434", "details": {"latency_ms": "1e400"}}).encode()]
    for raw in hostile:
        redis_db.client.publish(OLLAMA, raw)
        redis_db.client.publish(RPC, raw)
    redis_db.client.publish(OLLAMA, response())
    wait_for(lambda: requests_of(exporter.scrape(), "success") == 1, 10, what="the good event after the bad ones")
    samples = exporter.scrape()
    assert value(samples, "sollol_events_invalid_total", channel="ollama") == len(hostile)  # an infinite latency too
    assert value(samples, "sollol_events_invalid_total", channel="rpc") == len(hostile)
    assert value(samples, "sollol_events_subscribed") == 1
    assert "Traceback" not in exporter.read_log()


def test_model_names_past_the_cap_are_folded(start_exporter, redis_db):
    exporter = start_exporter({**_config(redis_db.url), "events": {"max_models": 20}})
    wait_for(lambda: subscribed(exporter, 1), 10, what="subscribed")
    rss_before = rss_kib(exporter.process.pid)
    pipe = redis_db.client.pipeline(transaction=False)
    for index in range(10_000):
        pipe.publish(OLLAMA, response(model=f"model-{index}"))
    pipe.execute()
    wait_for(lambda: value(exporter.scrape(), "sollol_events_received_total", channel="ollama") == 10_000, 30, what="all received")
    samples = exporter.scrape()
    models = {dict(labels)["model"] for labels in series(samples, "sollol_requests_total")}
    assert len(models) == 21 and "other" in models
    assert value(samples, "sollol_events_label_values_folded_total", label="model") == 10_000 - 20
    assert rss_kib(exporter.process.pid) - rss_before < 20 * 1024  # flat: no per-name state past the cap


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_events_can_be_switched_off(start_exporter, redis_db):
    exporter = start_exporter({**_config(redis_db.url), "events": {"enabled": False}})
    exporter.scrape()
    time.sleep(0.5)  # an enabled exporter has subscribed long before this (see the tests above)
    assert redis_db.client.pubsub_numsub(OLLAMA) == [(OLLAMA.encode(), 0)]
    redis_db.client.publish(OLLAMA, response())
    samples = exporter.scrape()
    assert value(samples, "sollol_events_subscribed") is None
    assert series(samples, "sollol_requests_total") == {}
    assert value(samples, "sollol_exporter_collector_success", collector="events") is None


# The subscriber in this process, against redis-servers started here: every way its URL can reach Redis.

def _start_redis(workdir, *args) -> subprocess.Popen:
    return subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def reachable_redis(request, tmp_path):
    """(URL for the subscriber, client to publish with) of a redis-server reached by TCP, TCP with RESP3, TLS or a
    Unix socket."""
    port = free_port()
    if request.param == "tls":
        certs = make_certificates(tmp_path / "certs")
        process = _start_redis(tmp_path, "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(certs.server.cert),
                               "--tls-key-file", str(certs.server.key), "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", "no")
        url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={certs.ca}"
    elif request.param == "unix":
        path = tmp_path / "redis.sock"
        process = _start_redis(tmp_path, "--port", "0", "--unixsocket", str(path))
        url = f"unix://{path}?db=0"
    else:
        process = _start_redis(tmp_path, "--port", str(port))
        url = f"redis://127.0.0.1:{port}/0" + ("?protocol=3" if request.param == "resp3" else "")
    client = redis.Redis.from_url(url.replace("?protocol=3", ""))
    try:
        wait_for(lambda: _answers(client), 10, what="redis-server start")
        yield url, client
    finally:
        client.close()
        stop_process(process)


def _answers(client) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def subscriber():
    started = []

    def start(url, counts, timeout=2.0):
        started.append(Subscriber(url, {OLLAMA: "ollama", RPC: "rpc"}, counts, {}, timeout).start())
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.mark.parametrize("reachable_redis", ["tcp", "resp3", "tls", "unix"], indirect=True)
def test_a_pipelined_burst_is_counted_in_full_however_redis_is_reached(reachable_redis, subscriber):
    url, client = reachable_redis
    counts = EventCounts()
    running = subscriber(url, counts)
    wait_for(lambda: counts.view().subscribed, 10, what="subscribed")
    assert running.tried.is_set()
    pipe = client.pipeline(transaction=False)
    for index in range(20_000):
        pipe.publish(OLLAMA if index % 2 else RPC, response() if index % 2 else b"not an event")
    assert sum(pipe.execute()) == 20_000
    wait_for(lambda: sum(counts.view().received.values()) == 20_000, 30, what="all received")
    view = counts.view()
    assert view.received == {"ollama": 10_000, "rpc": 10_000} and view.invalid == {"rpc": 10_000}
    assert view.requests[("10.0.0.5:11434", "llama3.2:3b", "chat", "success", "false")] == 10_000
    assert view.subscription_losses == 0


def test_a_redis_that_stops_answering_is_found_by_the_keepalive_and_counted_as_a_loss(own_redis, subscriber, monkeypatch):
    import sollol_exporter.events.subscriber as module

    monkeypatch.setattr(module, "KEEPALIVE", 0.5)
    counts = EventCounts()
    subscriber(own_redis.url, counts, timeout=1.0)
    wait_for(lambda: counts.view().subscribed, 10, what="subscribed")
    own_redis.process.send_signal(signal.SIGSTOP)  # the connection stays open; nothing answers on it
    try:
        wait_for(lambda: counts.view().subscription_losses == 1, 15, what="the silent connection given up")
        assert not counts.view().subscribed
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    wait_for(lambda: counts.view().subscribed, 30, what="subscribed again")
    own_redis.client.publish(OLLAMA, response())
    wait_for(lambda: counts.view().received.get("ollama") == 1, 10, what="counting again")
    assert counts.view().subscription_losses == 1


def test_an_idle_subscription_is_kept(own_redis, subscriber, monkeypatch):
    import sollol_exporter.events.subscriber as module

    monkeypatch.setattr(module, "KEEPALIVE", 0.2)
    counts = EventCounts()
    subscriber(own_redis.url, counts, timeout=1.0)
    wait_for(lambda: counts.view().subscribed, 10, what="subscribed")
    time.sleep(6.0)  # many keep-alives, each answered within the 5 s the subscriber waits at least
    assert counts.view().subscribed and counts.view().subscription_losses == 0
    assert own_redis.client.publish(OLLAMA, response()) == 1
    wait_for(lambda: counts.view().received.get("ollama") == 1, 10, what="counted")


def test_a_subscriber_backing_off_subscribes_as_soon_as_redis_answers_a_read(tmp_path):
    """Redis that comes up after the exporter: the subscriber, backing off after its failed attempts, subscribes at
    the first scrape that reads Redis, not at the end of its back-off (up to 30 s of "not subscribed")."""
    from sollol_exporter import config as config_module
    from sollol_exporter.scrape import Scraper
    from tests.support.collect import collect
    from tests.support.net import free_port
    from tests.support.redis_server import RedisServer

    port = free_port()
    scraper = Scraper(config_module.load(None, env={"SOLLOL_REDIS_URL": f"redis://127.0.0.1:{port}/0", "SOLLOL_COORDINATOR_PORT": str(free_port()),
                                                    "SOLLOL_DASHBOARD_PORT": str(free_port())}))
    server = None
    try:
        time.sleep(8)  # failed attempts at 0, 0.5, 1.5, 3.5 s: the next would come at 7.5 s, then 15.5 s
        server = RedisServer(tmp_path, port=port)
        started = time.monotonic()
        collect(scraper)
        wait_for(lambda: value(collect(scraper), "sollol_events_subscribed") == 1, 5, what="subscribed")
        assert time.monotonic() - started < 5
    finally:
        scraper.close()
        if server is not None:
            server.stop()
