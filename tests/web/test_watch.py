"""Web config reloads that fail unexpectedly: one error line, the traceback only at debug level."""

from __future__ import annotations

import logging

import pytest

from sollol_exporter.web import watch


@pytest.mark.parametrize("level, traceback", [(logging.DEBUG, True), (logging.INFO, False)])
def test_an_unexpected_reload_failure_is_logged_with_its_traceback_at_debug_level(tmp_path, monkeypatch, caplog, level, traceback):
    path = tmp_path / "web.yml"
    path.write_text("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    watcher = watch.WebConfigWatcher(str(path))

    def broken(name):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(watch, "load", broken)
    with caplog.at_level(level, logger="sollol_exporter"):
        assert watcher.reload() is False
    [record] = [r for r in caplog.records if r.getMessage() == "web config reload failed, keeping the previous one"]
    assert bool(record.exc_info) is traceback and "RuntimeError" in record.fields["error"]


def test_a_config_error_is_logged_without_a_traceback_even_at_debug_level(tmp_path, caplog):
    path = tmp_path / "web.yml"
    path.write_text("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    watcher = watch.WebConfigWatcher(str(path))
    path.write_text("no_such_key: 1\n")
    with caplog.at_level(logging.DEBUG, logger="sollol_exporter"):
        assert watcher.reload() is False
    [record] = [r for r in caplog.records if r.getMessage() == "web config reload failed, keeping the previous one"]
    assert not record.exc_info and "no_such_key" in record.fields["error"]
