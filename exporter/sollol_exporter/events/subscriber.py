"""One Redis connection subscribed to SOLLOL's event channels, in the background, independent of scrapes.

It reconnects with exponential back-off when Redis goes away and subscribes again. PUB/SUB keeps nothing:
events published while the exporter is not subscribed are not counted.
"""

from __future__ import annotations

import logging
import threading

import redis

from sollol_exporter.events.counts import EventCounts
from sollol_exporter.labels import Address
from sollol_exporter.logs import fields

log = logging.getLogger(__name__)
MIN_BACKOFF, MAX_BACKOFF = 0.5, 30.0


class Subscriber:
    def __init__(self, url: str, channels: dict[str, str], counts: EventCounts, coordinator_names: dict[Address, str], timeout: float):
        """`channels` maps each channel name to its kind (ollama, rpc, traces)."""
        self.url = url
        self.channels = dict(channels)
        self.counts = counts
        self.coordinator_names = coordinator_names
        self.timeout = timeout
        self._stop = threading.Event()
        self.tried = threading.Event()  # set once the first connection has subscribed or failed
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        # Only the newest subscriber's messages count: a replaced one may still deliver a few before it stops.
        self.generation = counts.new_generation()

    def start(self) -> "Subscriber":
        self._thread.start()
        return self

    def stop(self, wait: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(wait)

    def _handle(self, message: dict) -> None:
        channel = self.channels.get(message["channel"].decode("utf-8", "replace"), "")
        try:
            self.counts.handle(channel, message["data"], self.coordinator_names, self.generation)
        except Exception:  # a bug in counting must cost that event, never the subscription
            log.error("event not counted", exc_info=True, extra=fields(channel=channel))

    def _run(self) -> None:
        backoff = MIN_BACKOFF
        failing = ""
        while not self._stop.is_set():
            pubsub = None
            try:
                client = redis.Redis.from_url(
                    self.url, socket_timeout=max(self.timeout, 5.0), socket_connect_timeout=self.timeout,
                    health_check_interval=15, decode_responses=False,
                )
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(*self.channels)
                self.counts.set_subscribed(True, self.generation)
                self.tried.set()
                if failing:
                    log.info("events subscription restored", extra=fields(channels=",".join(self.channels)))
                failing, backoff = "", MIN_BACKOFF
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None and message.get("type") == "message":
                        self._handle(message)
            except Exception as err:  # whatever ends the connection (redis-py raises more than RedisError), retry
                self.counts.set_subscribed(False, self.generation)
                self.tried.set()
                reason = type(err).__name__
                if reason != failing:
                    log.warning("events subscription lost, retrying", extra=fields(error=reason, retry_in=f"{backoff}s"))
                    failing = reason
                self._stop.wait(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:
                        pass
        self.counts.set_subscribed(False, self.generation)
