"""The applications collector: SOLLOL's dashboard and the apps registered with it, nothing when it is absent."""

from sollol_exporter.collectors.applications import ApplicationsCollector
from sollol_exporter.presence import DASHBOARD
from sollol_exporter.snapshot import RedisStatus, Snapshot, frozen
from sollol_exporter.sources.dashboard import Application, Reading
from tests.support.collect import rendered
from tests.support.exporter import series

WHERE = "localhost:8080"
ROUTER = Application(app_id="a1b2", name="router", router_type="RayHybridRouter", version="0.9.66", active=True,
                     uptime=120.0, last_heartbeat=1_700_000_000.0, label="router")
STARTING = Application(app_id="c3d4", name="batch", router_type="OllamaPool", version="", active=False,
                       uptime=None, last_heartbeat=None, label="batch")


def snapshot(reading: Reading | None, expected: bool = True) -> Snapshot:
    return Snapshot(now=0.0, budget=10.0, redis=RedisStatus(True), dashboard=reading,
                    expected=frozen({(DASHBOARD, WHERE): expected}))


def test_each_app_is_rendered_with_what_the_dashboard_says_of_it():
    reading = Reading(up=True, duration=0.01, kind="dashboard_service", applications=[ROUTER, STARTING])
    samples = rendered(ApplicationsCollector(), snapshot(reading))
    assert series(samples, "sollol_dashboard_up") == {(): 1.0}
    assert series(samples, "sollol_dashboard_info") == {(("kind", "dashboard_service"),): 1.0}
    router, batch = (("app", "router"), ("router_type", "RayHybridRouter")), (("app", "batch"), ("router_type", "OllamaPool"))
    assert series(samples, "sollol_application_up") == {router: 1.0, batch: 0.0}
    # what the dashboard did not say is left out, not rendered as 0
    assert series(samples, "sollol_application_uptime_seconds") == {router: 120.0}
    assert series(samples, "sollol_application_last_heartbeat_timestamp_seconds") == {router: 1_700_000_000.0}
    assert series(samples, "sollol_application_info") == {
        (("app", "router"), ("app_id", "a1b2"), ("router_type", "RayHybridRouter"), ("version", "0.9.66")): 1.0,
        (("app", "batch"), ("app_id", "c3d4"), ("router_type", "OllamaPool"), ("version", "")): 1.0,
    }


def test_a_vanished_app_stays_with_up_0_and_nothing_else():
    reading = Reading(up=True, duration=0.01, kind="dashboard_service", applications=[ROUTER], vanished=[("gone", "OllamaPool")])
    samples = rendered(ApplicationsCollector(), snapshot(reading))
    assert series(samples, "sollol_application_up") == {(("app", "router"), ("router_type", "RayHybridRouter")): 1.0,
                                                         (("app", "gone"), ("router_type", "OllamaPool")): 0.0}
    assert all(dict(labels)["app"] != "gone" for labels in series(samples, "sollol_application_info"))


def test_an_expected_dashboard_that_is_down_renders_only_its_up_series():
    reading = Reading(up=False, duration=1.0, detail="refused", applications=[ROUTER])
    assert rendered(ApplicationsCollector(), snapshot(reading)) == {("sollol_dashboard_up", ()): 0.0}


def test_an_absent_dashboard_renders_nothing():
    reading = Reading(up=False, duration=1.0, detail="refused", answered=False)
    assert list(ApplicationsCollector().collect(snapshot(reading, expected=False))) == []
    assert list(ApplicationsCollector().collect(snapshot(None))) == []  # not read at all (turned off, or no time)
