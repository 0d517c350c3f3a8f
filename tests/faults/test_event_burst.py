"""An event burst past Redis' output buffer for subscribers (issue "The scrape core, owned and bounded", row 10).

Redis closes a subscriber whose unread output passes `client-output-buffer-limit pubsub` (32 MB hard by default).
The exporter read one message at a time through redis-py: a burst of 100,000 events of 436 bytes published at
full speed got about 20,000 counted, Redis dropped the subscriber, and nothing but a half-second dip in
`sollol_events_subscribed` showed it. Both tests failed on that code: the burst is now counted in full, and a
subscriber Redis drops all the same is counted in `sollol_events_subscription_losses_total` and logged once.

The publisher is a process of its own, so that it publishes at full speed whatever the exporter does.
"""

from __future__ import annotations

import subprocess
import sys
import time

from tests.support.collect import events_only_config
from tests.support.exporter import value
from tests.support.net import wait_for
from tests.support.sollol_events import OLLAMA_CHANNEL, ollama_error, ollama_response

NODE, MODEL = "10.0.0.5:11434", "llama3.2:3b"
# A node that goes away under load fails every request at once, each with requests' full text: 436 bytes an event.
REFUSED = ("HTTPConnectionPool(host='10.0.0.5', port=11434): Max retries exceeded with url: /api/chat (Caused by "
           "NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f3b2c1d5e10>: Failed to establish a "
           "new connection: [Errno 111] Connection refused'))")
BURST = 100_000

PUBLISHER = """
import sys, redis
port, count, channel = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
message = sys.stdin.buffer.read()
client = redis.Redis(host="127.0.0.1", port=port)
delivered = 0
for offset in range(0, count, 1000):
    pipe = client.pipeline(transaction=False)
    for _ in range(min(1000, count - offset)):
        pipe.publish(channel, message)
    delivered += sum(pipe.execute())
print(delivered)
"""


def publish(port: int, message: bytes, count: int) -> int:
    """Publish `message` `count` times as fast as Redis takes them, from another process; how many subscribers got
    them, summed over the messages."""
    done = subprocess.run([sys.executable, "-c", PUBLISHER, str(port), str(count), OLLAMA_CHANNEL], input=message,
                          capture_output=True, timeout=300, check=True)
    return int(done.stdout)


def settled(read, until: float, quiet: float = 5.0, limit: float = 120.0) -> float:
    """`read()` once it is `until`, or the value it stopped changing at (for `quiet` seconds)."""
    deadline = time.monotonic() + limit
    last, since = read(), time.monotonic()
    while last != until and time.monotonic() < deadline:
        time.sleep(0.25)
        current = read()
        if current != last:
            last, since = current, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def _config(url):
    return events_only_config(url)


def _received(exporter) -> float:
    return value(exporter.scrape(), "sollol_events_received_total", channel="ollama") or 0.0


def test_a_burst_of_100000_events_at_full_speed_is_counted_in_full(start_exporter, redis_db):
    exporter = start_exporter(_config(redis_db.url))
    wait_for(lambda: value(exporter.scrape(), "sollol_events_subscribed") == 1, 10, what="subscribed")
    message = ollama_error(NODE, MODEL, REFUSED, 2.1).encode()
    assert len(message) >= 400
    delivered = publish(redis_db.port, message, BURST)
    counted = settled(lambda: _received(exporter), BURST)
    samples = exporter.scrape()
    assert (delivered, counted) == (BURST, BURST), "Redis dropped the subscriber, or the exporter lost events"
    assert value(samples, "sollol_requests_total", node=NODE, model=MODEL, operation="unknown", outcome="error", streaming="false") == BURST
    assert value(samples, "sollol_events_subscription_losses_total") == 0
    assert value(samples, "sollol_events_subscribed") == 1


def test_a_subscriber_that_redis_drops_is_counted_as_a_loss_and_logged_once(start_exporter, own_redis):
    exporter = start_exporter(_config(own_redis.url))
    wait_for(lambda: value(exporter.scrape(), "sollol_events_subscribed") == 1, 10, what="subscribed")
    assert value(exporter.scrape(), "sollol_events_subscription_losses_total") == 0
    # Any subscriber falls behind a limit this small: one message past it, and Redis closes the connection.
    own_redis.client.config_set("client-output-buffer-limit", "pubsub 65536 65536 0")
    assert own_redis.client.publish(OLLAMA_CHANNEL, b"x" * 1_048_576) == 1
    wait_for(lambda: value(exporter.scrape(), "sollol_events_subscription_losses_total") == 1, 15, what="the loss counted")
    wait_for(lambda: own_redis.client.pubsub_numsub(OLLAMA_CHANNEL)[0][1] == 1, 15, what="subscribed again")
    wait_for(lambda: value(exporter.scrape(), "sollol_events_subscribed") == 1, 15, what="subscribed again, as exported")
    own_redis.client.publish(OLLAMA_CHANNEL, ollama_response(NODE, MODEL, 842.1))
    wait_for(lambda: value(exporter.scrape(), "sollol_requests_total", node=NODE, model=MODEL, operation="chat",
                           outcome="success", streaming="false") == 1, 10, what="counting again")
    log = exporter.read_log()
    assert log.count("events subscription lost") == 1, log
    assert "Traceback" not in log
    assert value(exporter.scrape(), "sollol_events_subscription_losses_total") == 1
