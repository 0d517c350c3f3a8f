"""SOLLOL's dashboard service: only `GET /api/applications`, the one place the application registry lives.

Its other endpoints scan the local /24 or run `ps aux` on every call (docs/sollol.md#endpoints-never-called); they are never called.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sollol_exporter.labels import sanitize
from sollol_exporter.sources.http_client import FetchError, fetch
from sollol_exporter.values import MAX_SECONDS, BadValue, decode_json, epoch_seconds, items, mapping, number, text

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
    label: str = ""  # the name, made unique with the app id where two apps share it


@dataclass
class Reading:
    up: bool
    duration: float
    detail: str = ""
    kind: str = ""
    applications: list[Application] = field(default_factory=list)
    invalid_entries: int = 0
    dropped_entries: int = 0
    vanished: list[tuple[str, str]] = field(default_factory=list)  # (app, router_type) still reported with up 0
    answered: bool = True  # False: nothing spoke HTTP on the port (refused, unreachable, no name, connect timeout)


MAX_APPLICATIONS = 1000


def parse_applications(body: bytes) -> tuple[str, list[Application], int, int]:
    """(kind, applications, invalid entries, entries past MAX_APPLICATIONS)."""
    doc = decode_json(body, "/api/applications")
    if not isinstance(doc, dict) or not isinstance(doc.get("applications"), list):
        raise BadValue("no applications list")
    kind = UNIFIED if "active" in doc else DASHBOARD_SERVICE
    apps, invalid = [], 0
    for entry in items(doc["applications"])[:MAX_APPLICATIONS]:
        name = text(mapping(entry).get("name"))
        if not name:
            invalid += 1
            continue
        status = text(entry.get("status")) or "active"
        uptime = number(entry.get("uptime_seconds"), 0.0, MAX_SECONDS)
        heartbeat = epoch_seconds(entry.get("last_heartbeat"))  # one from the future would hide a stopped app
        invalid += (uptime is None and entry.get("uptime_seconds") is not None) + (heartbeat is None and entry.get("last_heartbeat") is not None)
        apps.append(
            Application(
                app_id=sanitize(text(entry.get("app_id")) or "", 64),
                name=sanitize(name, 96),
                router_type=sanitize(text(entry.get("router_type")) or "unknown", 64),
                version=sanitize(text(entry.get("version")) or "", 32),
                active=status == "active",
                uptime=uptime,
                last_heartbeat=heartbeat,
            )
        )
    return kind, apps, invalid, max(0, len(doc["applications"]) - MAX_APPLICATIONS)


class DashboardClient:
    def __init__(self, url: str, timeout: float):
        self.base = url.rstrip("/")
        self.timeout = timeout

    def read(self, deadline: float) -> Reading:
        started = time.monotonic()
        try:
            reply = fetch(self.base + "/api/applications", min(self.timeout, deadline - time.monotonic()))
        except FetchError as err:
            return Reading(False, time.monotonic() - started, str(err), answered=err.connected)
        duration = time.monotonic() - started
        if reply.status == 404:
            return Reading(True, duration, "legacy dashboard: no application registry", kind=LEGACY)
        if reply.status != 200:
            return Reading(False, duration, f"/api/applications answered HTTP {reply.status}")
        try:
            kind, apps, invalid, dropped = parse_applications(reply.body)
        except BadValue as err:
            return Reading(False, duration, str(err)[:120], invalid_entries=1)
        return Reading(True, duration, kind=kind, applications=apps, invalid_entries=invalid, dropped_entries=dropped)

