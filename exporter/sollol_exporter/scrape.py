"""The scrapes of one config: each builds its own collection over the config's Sources, freezes it into a
Snapshot at its own deadline, and renders it with the collectors.

The pipeline runs one way: Scraper -> Collection -> Sources -> ClusterState. What SOLLOL told us lives in the
ClusterState, which outlives this scraper across config reloads; a reload builds a new Scraper (new Sources and
collectors) and retires this one, whose Sources close once the last scrape or read using them has finished.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from prometheus_client.core import Metric

from sollol_exporter import presence
from sollol_exporter.addresses import Address, parse_address
from sollol_exporter.cluster import ClusterState
from sollol_exporter.collection import Collection
from sollol_exporter.collectors import build_collectors
from sollol_exporter.collectors.names import RENDER_REDIS_READ, CollectorName
from sollol_exporter.config import Config, coordinator_label
from sollol_exporter.events import OLLAMA, RPC, TRACES
from sollol_exporter.events.subscriber import Subscriber
from sollol_exporter.logs import fields
from sollol_exporter.snapshot import Snapshot, frozen
from sollol_exporter.sources.bundle import Sources
from sollol_exporter.workers import WORKER_UP_STATES

log = logging.getLogger(__name__)


# SOLLOL names a coordinator on this machine by whichever loopback address it was given: all of them are this one.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


def coordinator_addresses(config: Config) -> dict[Address, str]:
    """The address an event may name each configured coordinator by, with its label."""
    names: dict[Address, str] = {}
    for coordinator in config.coordinators:
        address, label = parse_address(coordinator.url, 80), coordinator_label(coordinator)
        aliases = [Address(host, address.port) for host in LOOPBACK_HOSTS] if address.host in LOOPBACK_HOSTS else []
        for each in aliases:
            names.setdefault(each, label)
        names[address] = label
    return names


class FailureLog:
    """One log line when something starts failing or changes how it fails, one when it recovers; at most
    MAX_LINES of each per scrape, the rest summed up in one line (a flood of hostile target names is not a flood of
    log lines)."""

    MAX_LINES = 20

    def __init__(self) -> None:
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    def update(self, problems: dict[str, str]) -> None:
        with self._lock:
            changed = [key for key, message in problems.items() if self._last.get(key) != message]
            recovered = [key for key in self._last if key not in problems]
            for key in recovered:
                del self._last[key]
            for key in changed:
                self._last[key] = problems[key]
        for key in changed[: self.MAX_LINES]:
            log.warning("failing", extra=fields(what=key, error=problems[key]))
        if len(changed) > self.MAX_LINES:
            log.warning("failing", extra=fields(what=f"{len(changed) - self.MAX_LINES} more", error="not logged one by one"))
        for key in recovered[: self.MAX_LINES]:
            log.info("recovered", extra=fields(what=key))
        if len(recovered) > self.MAX_LINES:
            log.info("recovered", extra=fields(what=f"{len(recovered) - self.MAX_LINES} more"))


class Scraper:
    def __init__(self, config: Config, cluster: ClusterState | None = None):
        """`cluster`: the state to carry over from the scraper this one replaces (None: a new one, owned here)."""
        self.config = config
        self._owns_cluster = cluster is None
        self.cluster = cluster or ClusterState(config.metadata.retention, config.metadata.stats_max_age)
        self.cluster.configure(config.metadata.retention, config.metadata.stats_max_age)
        self.sources = Sources(config, self.cluster)
        self.failures = FailureLog()
        collectors = build_collectors(config)
        # the exporter's own collector renders last: it reports on the others, including those that raised
        self.own_collector = next(c for c in collectors if c.name == CollectorName.EXPORTER)
        self.collectors = [c for c in collectors if c is not self.own_collector]
        self.last: Snapshot | None = None
        self._subscribe()

    def _subscribe(self) -> None:
        events, redis_config = self.config.events, self.config.redis
        self.cluster.events.configure(events.max_nodes, events.max_models, events.max_label_sets)
        if not events.enabled or CollectorName.EVENTS in self.config.disabled_collectors:
            self.cluster.subscribe(None, None)
            return
        channels = {events.channels.ollama: OLLAMA, events.channels.rpc: RPC, events.channels.traces: TRACES}
        names = coordinator_addresses(self.config)
        settings = (redis_config.url, redis_config.timeout, tuple(sorted(channels.items())), tuple(sorted(names.items())))
        self.cluster.subscribe(settings, lambda: Subscriber(redis_config.url, channels, self.cluster.events, names, redis_config.timeout).start())

    def close(self) -> None:
        """Retire this scraper: its sources close once no scrape or read uses them any more."""
        self.sources.retire()
        if self._owns_cluster:
            self.cluster.close()

    def collect(self, timeout: float) -> list[Metric]:
        """Metric families for one scrape that may take `timeout` seconds."""
        deadline = time.monotonic() + timeout
        self.sources.hold()
        try:
            collection = Collection(self.sources, deadline, timeout)
            collection.run()
            snapshot = collection.freeze(timeout)
        finally:
            self.sources.release()
        self.last = snapshot
        families = self._render(snapshot)
        self._log_failures(snapshot)
        return families

    def _render(self, snapshot: Snapshot) -> list[Metric]:
        families: list[Metric] = []
        failed: dict[str, str] = {}
        for collector in self.collectors:
            try:
                families.extend(collector.collect(snapshot))
            except Exception as err:  # a collector bug must cost its own metrics, not the scrape
                log.error("collector failed", exc_info=True, extra=fields(collector=collector.name))
                failed[collector.name] = f"internal error: {type(err).__name__}"
        if failed:
            snapshot = dataclasses.replace(snapshot, failures=frozen({**failed, **snapshot.failures}))
        families.extend(self.own_collector.collect(snapshot))
        return families

    def _log_failures(self, s: Snapshot) -> None:
        problems: dict[str, str] = {
            f"collector={name}": message
            for name, message in s.failures.items()
            if not (not s.redis.up and name in RENDER_REDIS_READ and name != CollectorName.REDIS)
        }
        for name, reading in s.coordinators.items():
            if not s.expected.get((presence.COORDINATOR, name), True):
                continue  # absent: the landing page says what to set
            if reading.state != "ok" or reading.detail:
                problems[f"coordinator={name}"] = f"{reading.state}: {reading.detail}".rstrip(": ")
        for address, backend in s.backends.items():
            if backend.state not in WORKER_UP_STATES:
                problems[f"backend={address}"] = f"{backend.state}: {backend.result.detail}".rstrip(": ")
        for address, node in s.ollama.items():
            if not node.up or node.detail:
                problems[f"node={address}"] = node.detail or "down"
        self.failures.update(problems)
