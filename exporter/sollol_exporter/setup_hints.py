"""What to set when a part of SOLLOL was not found: one line per missing part, for the landing page.

Plain text with secrets masked; the page escapes it. Built from the last snapshot and the config it was taken with,
so a line disappears with the first scrape that finds the part.
"""

from __future__ import annotations

from sollol_exporter import redact
from sollol_exporter.config import Config
from sollol_exporter.snapshot import Snapshot
from sollol_exporter.sources.coordinator import UP_STATES

CONFIG_FILE = "in the config file (--config.file)"
# Collectors that read SOLLOL's Redis: the Redis line is shown while any of them is on.
REDIS_READERS = frozenset({"redis", "metadata", "gpu", "rpc_nodes", "routing", "events"})
MAX_URLS = 3


def setup_hints(snapshot: Snapshot | None, config: Config) -> list[str]:
    """One line for each part that is on but was not found in the last scrape; none before the first scrape."""
    if snapshot is None:
        return []
    off = config.disabled_collectors
    hints = []
    if not snapshot.redis.up and not REDIS_READERS <= off:
        hints.append(f"Redis: nothing answers at {redact.text(config.redis.url)} — set SOLLOL_REDIS_URL, or "
                     f"redis.url {CONFIG_FILE}")
    coordinators_up = any(r.state in UP_STATES for r in snapshot.coordinators.values())
    if config.coordinators and not coordinators_up and "coordinator" not in off:
        hints.append(f"llama.cpp coordinator: nothing answers at {_urls(c.url for c in config.coordinators)} — set "
                     f"SOLLOL_COORDINATOR_HOST and SOLLOL_COORDINATOR_PORT, or list them under coordinators: {CONFIG_FILE}")
    if not snapshot.backends and "rpc_backends" not in off:
        found = ("they are found through SOLLOL's Redis (rpc_backends in sollol:router:metadata, sollol:rpc:node:* "
                 "registration keys), or" if config.rpc_backends.discover else "discovery is off (rpc_backends.discover):")
        hints.append(f"RPC workers: none found — {found} list them under rpc_backends.static or "
                     f"coordinators[].rpc_backends {CONFIG_FILE}")
    if not snapshot.ollama and "ollama" not in off:
        found = ("they are found through nodes[] of sollol:router:metadata in SOLLOL's Redis, or"
                 if config.ollama.discover else "discovery is off (ollama.discover):")
        hints.append(f"Ollama nodes: none found — {found} list them under ollama.nodes {CONFIG_FILE}")
    dashboard = snapshot.dashboard
    if config.dashboard.enabled and "applications" not in off and (dashboard is None or not dashboard.up):
        hints.append(f"SOLLOL dashboard: nothing answers at {redact.text(config.dashboard.url)} — set "
                     f"SOLLOL_DASHBOARD_HOST and SOLLOL_DASHBOARD_PORT, or dashboard.url {CONFIG_FILE} "
                     f"(dashboard.enabled: false if there is none)")
    return hints


def _urls(urls) -> str:
    shown = [redact.text(url) for url in urls]
    more = len(shown) - MAX_URLS
    return ", ".join(shown[:MAX_URLS]) + (f" and {more} more" if more > 0 else "")
