"""A bad config on SIGHUP keeps the old one, says why in one log line and sets the reload metric to 0
(issue "Hardening", item 6: the password with '/' used to log nothing and leave the metric at 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.exporter import series, value
from tests.support.net import free_port, wait_for

HOSTILE = Path(__file__).parent.parent / "fixtures" / "config" / "hostile"
RELOAD_METRIC = "sollol_exporter_config_last_reload_successful"
PASSWORD = "Pa55/Word0"


def good_config(name: str) -> dict:
    return {
        "redis": {"url": f"redis://127.0.0.1:{free_port()}/0", "timeout": "300ms"},
        "coordinators": [{"name": name, "url": f"http://127.0.0.1:{free_port()}", "timeout": "300ms"}],
        "rpc_backends": {"discover": False},
        "ollama": {"discover": False},
        "dashboard": {"enabled": False},
    }


RENAMED = b"coordinators:\n  - name: after\n    url: http://127.0.0.1:1\n"
BAD_FORMS = {
    "redis password with a slash": (RENAMED + f"redis:\n  url: redis://:{PASSWORD}@127.0.0.1:6379/0\n".encode(), ":5: redis.url: an '@' after the host"),
    "not UTF-8": (RENAMED + "# K\u00e4se\n".encode("latin-1"), ":4: not UTF-8 text"),
    "alias bomb": (RENAMED + (HOSTILE / "alias_bomb.yml").read_bytes(), ":9: YAML aliases expand to more than 10000 values"),
}


def reload_result(exporter) -> float | None:
    return value(exporter.scrape(timeout=3), RELOAD_METRIC)


def coordinators(exporter) -> set[str]:
    return {dict(labels)["coordinator"] for labels in series(exporter.scrape(timeout=3), "sollol_coordinator_up")}


def reload_failures(exporter) -> list[str]:
    return [line for line in exporter.read_log().splitlines() if "config reload failed" in line]


@pytest.mark.parametrize("form", BAD_FORMS, ids=list(BAD_FORMS))
def test_bad_config_on_sighup_keeps_the_old_one(form, start_exporter):
    content, reason = BAD_FORMS[form]
    exporter = start_exporter(good_config("before"))
    assert reload_result(exporter) == 1

    exporter.config_path.write_bytes(content)
    exporter.reload()
    wait_for(lambda: reload_result(exporter) == 0, 15, interval=0.2, what="reload metric at 0")
    failures = wait_for(lambda: reload_failures(exporter), 5, what="a log line saying why")
    assert len(failures) == 1
    assert f"{exporter.config_path.name}{reason}" in failures[0]
    log = exporter.read_log()
    assert "Traceback" not in log
    assert not any(fragment in log for fragment in ("Pa55", "Word0"))
    assert coordinators(exporter) == {"before"}

    exporter.write_config(good_config("after"))
    exporter.reload()
    wait_for(lambda: reload_result(exporter) == 1, 15, interval=0.2, what="reload metric back at 1")
    assert coordinators(exporter) == {"after"}
