"""What the web layer serves from: the config in force, the scraper built from it, and the reload status.

Swapped whole on reload except for what SOLLOL told us, which lives in the scraper's cluster state.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR
from prometheus_client.core import GaugeMetricFamily, Metric

from sollol_exporter import redact
from sollol_exporter.cluster import ClusterState
from sollol_exporter.config import Config, ConfigError, summary
from sollol_exporter.logs import debug_traceback, fields
from sollol_exporter.scrape import Scraper
from sollol_exporter.setup_hints import setup_hints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetRow:
    """One line of the landing page's table."""

    kind: str
    name: str
    status: str
    seconds: float
    detail: str


class State:
    """`exporter_metrics`: include the process's own runtime metrics (process_*, python_gc_*, python_info);
    --web.disable-exporter-metrics turns them off."""

    def __init__(self, config: Config, config_path: str | None, exporter_metrics: bool = True):
        self.config = config
        self.config_path = config_path
        self.exporter_metrics = exporter_metrics
        self.cluster = ClusterState(config.metadata.retention, config.metadata.stats_max_age)
        self.scraper = Scraper(config, self.cluster)
        self.reload_ok = 1.0
        self.reload_time = time.time()
        self.lock = threading.Lock()

    def reload(self, load) -> bool:
        try:
            config = load(self.config_path)
        except Exception as err:  # ConfigError or anything else: keep serving the old config
            self.reload_ok = 0.0
            unexpected = not isinstance(err, ConfigError) and debug_traceback(log)
            log.error("config reload failed, keeping the previous config", exc_info=unexpected, extra=fields(error=str(err)))
            return False
        try:
            scraper = Scraper(config, self.cluster)  # what SOLLOL told us carries over
        except Exception as err:
            self.reload_ok = 0.0
            log.error("config reload failed, keeping the previous config", exc_info=debug_traceback(log),
                      extra=fields(error=type(err).__name__))
            return False
        with self.lock:
            old, self.scraper, self.config = self.scraper, scraper, config
            self.reload_ok, self.reload_time = 1.0, time.time()
        old.close()
        log.info("config reloaded", extra=fields(file=self.config_path or "(none)"))
        return True

    def close(self) -> None:
        self.scraper.close()
        self.cluster.close()

    def families(self, budget: float) -> list:
        with self.lock:  # held before a reload can retire them: a retired, unheld Sources closes at once
            scraper = self.scraper
            scraper.sources.hold()
        try:
            families = scraper.collect(budget)
        except Exception:
            log.error("collection failed", exc_info=debug_traceback(log))
            families = [GaugeMetricFamily("sollol_exporter_collection_error", "1 if the whole collection failed this scrape.", value=1.0)]
        finally:
            scraper.sources.release()
        reload_ok = GaugeMetricFamily("sollol_exporter_config_last_reload_successful", "1 if the last config (re)load worked.", value=self.reload_ok)
        reload_time = GaugeMetricFamily(
            "sollol_exporter_config_last_reload_success_timestamp_seconds", "When the config was last loaded successfully.", value=self.reload_time
        )
        own: list[Metric] = []
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR) if self.exporter_metrics else ():
            try:
                own.extend(collector.collect())
            except Exception:  # process metrics are a bonus; never fail a scrape for them
                log.debug("runtime metrics left out", exc_info=True)
        return [*families, reload_ok, reload_time, *own]

    def config_summary(self) -> dict:
        """The config in force, secrets masked, for the landing page."""
        return summary(self.config)

    def setup_hints(self) -> list[str]:
        """What to set for each part the last scrape did not find, for the landing page; empty before a scrape."""
        with self.lock:
            scraper = self.scraper
        return setup_hints(scraper.last, scraper.config)

    def target_rows(self) -> list[TargetRow]:
        """The last probe of every target, for the landing page; empty before the first scrape."""
        last = self.scraper.last
        if last is None:
            return []
        rows = []
        for name, reading in sorted(last.coordinators.items()):
            rows.append(TargetRow("coordinator", name, reading.state, reading.duration, reading.detail))
        for address, backend in sorted(last.backends.items()):
            rows.append(TargetRow("rpc backend", str(address), backend.state, backend.result.duration, backend.result.detail))
        for address, node in sorted(last.ollama.items()):
            rows.append(TargetRow("ollama node", str(address), "up" if node.up else "down", node.duration, node.detail))
        if last.dashboard is not None:
            rows.append(TargetRow("dashboard", self.config_summary()["dashboard"]["url"], "up" if last.dashboard.up else "down", last.dashboard.duration,
                                  last.dashboard.detail))
        rows.append(TargetRow("redis", "", "up" if last.redis.up else "down", last.redis.duration, last.redis.error))
        return [TargetRow(r.kind, redact.text(r.name), r.status, r.seconds, redact.text(r.detail)) for r in rows]
