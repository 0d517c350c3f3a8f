import json
import time

from sollol_exporter.sources.dashboard import parse_applications


def applications(**app) -> bytes:
    entry = {"app_id": "a1b2c3d4e5", "name": "SynapticLlamas", "router_type": "RayHybridRouter", "status": "active",
             "last_heartbeat": time.time(), "uptime_seconds": 440.0, **app}
    return json.dumps({"applications": [entry], "total": 1}).encode()


def test_an_application_is_read():
    _, (app,), invalid, dropped = parse_applications(applications())
    assert (app.name, app.uptime, invalid, dropped) == ("SynapticLlamas", 440.0, 0, 0)


def test_a_heartbeat_from_the_future_and_an_absurd_uptime_are_invalid():
    _, (app,), invalid, _ = parse_applications(applications(last_heartbeat=time.time() + 86400, uptime_seconds=1e308))
    assert app.last_heartbeat is None and app.uptime is None
    assert invalid == 2
