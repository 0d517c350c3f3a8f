"""Which optional parts of a SOLLOL cluster are expected to be there.

The exporter has defaults for three parts that many clusters do not run: SOLLOL's Redis, a llama.cpp coordinator
and SOLLOL's dashboard service. A default only says where a part would be. A part is *expected* when
  - the config file names it (SOLLOL_* variables do not count: compose sets them for everyone),
  - SOLLOL announces it: for a coordinator, an event about that coordinator (RPC workers do not count:
    RayHybridRouter registers them at start and starts llama-server only for the first request that needs it);
    for the dashboard, RayHybridRouter's metadata (it starts the dashboard service), or
  - it has answered since the exporter started: anything that speaks its protocol, even with an error or by
    accepting and then hanging, is there (and down).
Only an expected part has an `_up` series, so `up == 0` always means that something which exists went away. A part
that is neither expected nor answering is *absent*: no `_up` series, its collector is not failing, and
`sollol_exporter_target_expected` is 0 for it. Once expected, a part stays expected for the life of the process.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

REDIS, COORDINATOR, DASHBOARD = "redis", "coordinator", "dashboard"
# Which `declared` entry of the config (see config.declared_parts) makes a kind of part expected.
DECLARED_BY = {REDIS: "redis", COORDINATOR: "coordinators", DASHBOARD: "dashboard"}


class Presence:
    """What has made each part expected so far. Thread-safe; lives in the cluster state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answered: set[tuple[str, str]] = set()
        self._announced: set[tuple[str, str]] = set()
        self._announced_kinds: set[str] = set()  # every part of the kind: SOLLOL uses llama.cpp, or runs a dashboard

    def answered(self, kind: str, name: str) -> None:
        with self._lock:
            self._answered.add((kind, name))

    def announce(self, kind: str, name: str | None = None) -> None:
        """SOLLOL says a part exists: this one, or (name None) every part of this kind the exporter knows of."""
        with self._lock:
            if name is None:
                self._announced_kinds.add(kind)
            else:
                self._announced.add((kind, name))

    def expected(self, kind: str, name: str, declared: frozenset[str]) -> bool:
        if DECLARED_BY[kind] in declared:
            return True
        with self._lock:
            return kind in self._announced_kinds or (kind, name) in self._announced or (kind, name) in self._answered

    def forget(self, kind: str, keep: set[str]) -> None:
        """Drop what is known of parts of `kind` that the config no longer names (a coordinator dropped from the
        file; Redis or the dashboard at another address after a reload)."""
        with self._lock:
            self._answered = {(k, n) for k, n in self._answered if k != kind or n in keep}
            self._announced = {(k, n) for k, n in self._announced if k != kind or n in keep}


def where(url: str) -> str:
    """A part's address for a label: host:port of its URL (the socket path for unix://), never user or password."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return parts.path
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return ""
