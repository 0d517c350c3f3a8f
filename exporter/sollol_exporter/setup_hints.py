"""What to set when a part of SOLLOL was not found: one line per missing part, for the landing page.

Plain text with secrets masked; the page escapes it. Built from the last snapshot and the config it was taken with,
so a line disappears with the first scrape that finds the part.
"""

from __future__ import annotations

from sollol_exporter import redact
from sollol_exporter.collectors.names import REPORT_FROM_REDIS, CollectorName
from sollol_exporter.config import Config, coordinator_label
from sollol_exporter.presence import COORDINATOR, DASHBOARD, REDIS
from sollol_exporter.snapshot import Snapshot, is_expected

CONFIG_FILE = "in the config file (--config.file)"
MAX_URLS = 3


def setup_hints(snapshot: Snapshot | None, config: Config) -> list[str]:
    """One line for each part that is on but absent in the last scrape (nothing answers where it would be, and
    nothing names it); none before the first scrape. A part that is expected and down is an outage, not a setup
    question: the table of targets and the alerts say so."""
    if snapshot is None:
        return []
    off, declared = config.disabled_collectors, config.declared
    hints = []
    if not snapshot.redis.up and not off >= REPORT_FROM_REDIS and not is_expected(snapshot, REDIS):
        where = f"redis.url {CONFIG_FILE}" if "redis" in declared else f"SOLLOL_REDIS_URL, or redis.url {CONFIG_FILE}"
        hints.append(f"Redis: nothing answers at {redact.text(config.redis.url)} — set {where}")
    absent = [c for c in config.coordinators if not is_expected(snapshot, COORDINATOR, coordinator_label(c))]
    if config.coordinators and len(absent) == len(config.coordinators) and not {CollectorName.COORDINATOR, CollectorName.RPC_BACKENDS} <= off:
        hints.append(f"llama.cpp coordinator: nothing answers at {_urls(c.url for c in absent)} — set "
                     f"SOLLOL_COORDINATOR_HOST and SOLLOL_COORDINATOR_PORT, or list them under coordinators: {CONFIG_FILE} "
                     "(coordinators: [] if you run no llama.cpp)")
    if not snapshot.backends and not snapshot.ollama:  # one kind found is a cluster of that shape: no hint for the other
        if CollectorName.RPC_BACKENDS not in off and config.coordinators:
            found = ("they are found through SOLLOL's Redis (rpc_backends in sollol:router:metadata, sollol:rpc:node:* "
                     "registration keys), or" if config.rpc_backends.discover else "discovery is off (rpc_backends.discover):")
            hints.append(f"RPC workers: none found — {found} list them under rpc_backends.static or "
                         f"coordinators[].rpc_backends {CONFIG_FILE}")
        if CollectorName.OLLAMA not in off:
            found = ("they are found through nodes[] of sollol:router:metadata in SOLLOL's Redis, or"
                     if config.ollama.discover else "discovery is off (ollama.discover):")
            hints.append(f"Ollama nodes: none found — {found} list them under ollama.nodes {CONFIG_FILE}")
    dashboard = snapshot.dashboard
    if (config.dashboard.enabled and CollectorName.APPLICATIONS not in off and (dashboard is None or not dashboard.up)
            and not is_expected(snapshot, DASHBOARD)):
        where = (f"dashboard.url {CONFIG_FILE}" if "dashboard" in declared
                 else f"SOLLOL_DASHBOARD_HOST and SOLLOL_DASHBOARD_PORT, or dashboard.url {CONFIG_FILE}")
        hints.append(f"SOLLOL dashboard: nothing answers at {redact.text(config.dashboard.url)} — set {where} "
                     "(dashboard.enabled: false if there is none)")
    return hints


def _urls(urls) -> str:
    shown = [redact.text(url) for url in urls]
    more = len(shown) - MAX_URLS
    return ", ".join(shown[:MAX_URLS]) + (f" and {more} more" if more > 0 else "")
