"""One Redis connection subscribed to SOLLOL's event channels, in the background, independent of scrapes.

redis-py makes the connection (URL, TLS, AUTH, protocol) and sends SUBSCRIBE; from then on the socket is read
in batches (push_reader.py), fast enough that Redis never holds a burst back for the exporter. PUB/SUB keeps
nothing: events published while the exporter is not subscribed are not counted. So the end of an established
subscription (Redis closed it, for instance for a subscriber past its output buffer limit; or it failed) is a
loss: counted in `sollol_events_subscription_losses_total` and logged once, then the subscriber connects again
at once, and with exponential back-off while that fails.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from sollol_exporter.addresses import Address
from sollol_exporter.events.counts import MAX_EVENT_BYTES, EventCounts
from sollol_exporter.events.push_reader import PushReader
from sollol_exporter.logs import fields

log = logging.getLogger(__name__)
MIN_BACKOFF, MAX_BACKOFF = 0.5, 30.0
BATCH = 256  # messages counted per hold of the counts' lock: a scrape waits at most for one batch
POLL = 0.5  # how often an idle subscriber looks at stop()
KEEPALIVE = 15.0  # an idle connection is PINGed after this long, and lost if nothing answers within the timeout


class Subscriber:
    def __init__(self, url: str, channels: dict[str, str], counts: EventCounts, coordinator_names: dict[Address, str], timeout: float):
        """`channels` maps each channel name to its kind (ollama, rpc, traces)."""
        self.url = url
        self.channels = dict(channels)
        self._kinds = {name.encode("utf-8"): kind for name, kind in channels.items()}
        self.counts = counts
        self.coordinator_names = coordinator_names
        self.timeout = timeout
        self._stop = threading.Event()
        self._retry = threading.Event()  # cuts a back-off short: Redis has just answered the scrape's read
        self.tried = threading.Event()  # set once the first connection has subscribed or failed
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        # Only the newest subscriber's messages count: a replaced one may still deliver a few before it stops.
        self.generation = counts.new_generation()

    def start(self) -> Subscriber:
        self._thread.start()
        return self

    def stop(self, wait: float = 5.0) -> None:
        self._stop.set()
        self._retry.set()
        self._thread.join(wait)

    def retry_now(self) -> None:
        """Redis answers again: a subscriber backing off tries at once rather than at the end of its back-off."""
        self._retry.set()

    def _run(self) -> None:
        backoff = MIN_BACKOFF
        failing = ""
        while not self._stop.is_set():
            subscribed_at = None
            try:
                for _ in self._session():
                    subscribed_at = time.monotonic()
                    self.tried.set()
                    if failing:
                        log.info("events subscription restored", extra=fields(channels=",".join(self.channels)))
                        failing = ""
            except Exception as err:  # whatever ends the connection (redis-py raises more than RedisError), retry
                self.tried.set()
                reason = type(err).__name__
                if subscribed_at is not None:
                    self.counts.lose_subscription(self.generation)
                    log.warning("events subscription lost: events published until it is restored are not counted",
                                extra=fields(error=reason, detail=str(err)[:200]))
                    failing = reason
                    if time.monotonic() - subscribed_at >= MAX_BACKOFF:
                        backoff = MIN_BACKOFF
                        continue  # at once: every moment unsubscribed loses events
                    # A subscription that keeps being lost soon after it is made backs off like a failing one.
                else:
                    self.counts.set_subscribed(False, self.generation)
                    if reason != failing:
                        log.warning("events subscription failed, retrying", extra=fields(error=reason, retry_in=f"{backoff}s"))
                        failing = reason
                woken = self._retry.wait(backoff)  # by stop(), or because Redis answered a read: it is back
                self._retry.clear()
                backoff = MIN_BACKOFF if woken else min(MAX_BACKOFF, backoff * 2)
        self.counts.set_subscribed(False, self.generation)

    def _session(self):
        """Subscribe and count until stop() or an error; yields once, when every channel is subscribed."""
        pool = redis.ConnectionPool.from_url(
            self.url, socket_timeout=max(self.timeout, 5.0), socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),  # the subscriber backs off itself
        )
        connection = pool.make_connection()
        try:
            connection.connect()
            connection.send_packed_command(connection.pack_command("SUBSCRIBE", *self.channels), check_health=False)
            reader = PushReader(connection._sock, MAX_EVENT_BYTES)
            unconfirmed = set(self._kinds)
            deadline = time.monotonic() + max(self.timeout, 5.0)
            pinged = 0.0
            while not self._stop.is_set():
                replies = reader.read(POLL, BATCH)
                messages = []
                for reply in replies:
                    if reply[0] == b"message":
                        messages.append((self._kinds.get(reply[1], ""), reply[2]))
                    elif reply[0] == b"subscribe" and reply[1] in unconfirmed:
                        unconfirmed.discard(reply[1])
                        if not unconfirmed:
                            self.counts.set_subscribed(True, self.generation)
                            yield
                if messages:
                    self._count(messages)
                now = time.monotonic()
                if unconfirmed and now > deadline:
                    raise TimeoutError("SUBSCRIBE was not confirmed")
                idle = now - reader.last_arrival
                if pinged > reader.last_arrival and now - pinged > max(self.timeout, 5.0):
                    raise TimeoutError("no answer to PING")
                if idle > KEEPALIVE and pinged <= reader.last_arrival:
                    connection.send_packed_command(connection.pack_command("PING"), check_health=False)
                    pinged = now
        finally:
            connection.disconnect()

    def _count(self, messages: list[tuple[str, bytes | None]]) -> None:
        try:
            self.counts.handle_many(messages, self.coordinator_names, self.generation)
        except Exception:  # a bug in counting must cost those events, never the subscription
            log.error("events not counted", exc_info=True, extra=fields(events=len(messages)))
