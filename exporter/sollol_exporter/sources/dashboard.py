"""SOLLOL's dashboard service: only `GET /api/applications`, the one place the application registry lives.

Its other endpoints scan the local /24 or run `ps aux` on every call (sollol-data §10.2); they are never called.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from sollol_exporter import __version__
from sollol_exporter.labels import sanitize
from sollol_exporter.sources.http_client import FetchError, fetch, session
from sollol_exporter.values import items, mapping, number, text

DASHBOARD_SERVICE, UNIFIED, LEGACY = "dashboard_service", "unified_dashboard", "legacy_dashboard"


@dataclass
class Application:
    app_id: str
    name: str
    router_type: str
    version: str
    active: bool
    uptime: float | None
    last_heartbeat: float | None


@dataclass
class Reading:
    up: bool
    duration: float
    detail: str = ""
    kind: str = ""
    applications: list[Application] = field(default_factory=list)
    invalid_entries: int = 0


def parse_applications(body: bytes) -> tuple[str, list[Application], int]:
    doc = json.loads(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("applications"), list):
        raise ValueError("no applications list")
    kind = UNIFIED if "active" in doc else DASHBOARD_SERVICE
    apps, invalid = [], 0
    for entry in items(doc["applications"])[:1000]:
        name = text(mapping(entry).get("name"))
        if not name:
            invalid += 1
            continue
        status = text(entry.get("status")) or "active"
        apps.append(
            Application(
                app_id=sanitize(text(entry.get("app_id")) or "", 64),
                name=sanitize(name, 96),
                router_type=sanitize(text(entry.get("router_type")) or "unknown", 64),
                version=sanitize(text(entry.get("version")) or "", 32),
                active=status == "active",
                uptime=number(entry.get("uptime_seconds")),
                last_heartbeat=number(entry.get("last_heartbeat")),
            )
        )
    return kind, apps, invalid


class DashboardClient:
    def __init__(self, url: str, timeout: float):
        self.base = url.rstrip("/")
        self.timeout = timeout
        self.http = session(f"sollol-exporter/{__version__}")

    def read(self, deadline: float) -> Reading:
        started = time.monotonic()
        try:
            reply = fetch(self.http, self.base + "/api/applications", min(self.timeout, deadline - time.monotonic()))
        except FetchError as err:
            return Reading(False, time.monotonic() - started, str(err))
        duration = time.monotonic() - started
        if reply.status == 404:
            return Reading(True, duration, "legacy dashboard: no application registry", kind=LEGACY)
        if reply.status != 200:
            return Reading(False, duration, f"/api/applications answered HTTP {reply.status}")
        try:
            kind, apps, invalid = parse_applications(reply.body)
        except ValueError as err:
            return Reading(False, duration, f"/api/applications: {str(err)[:80]}")
        return Reading(True, duration, kind=kind, applications=apps, invalid_entries=invalid)
