"""What is served from: the config in force and its reload, whose failures keep the old config and say why in one
line (with the traceback of an unexpected one only at debug level)."""

import logging

import pytest

from sollol_exporter import config as config_module
from sollol_exporter.state import State


def broken_loader(path):
    raise RuntimeError("a bug in the loader")


def refusing_loader(path):
    raise config_module.ConfigError("config.yml:3: scrape.timeout: must be more than 0")


@pytest.fixture
def state():
    state = State(config_module.load(None, env={}), None)
    yield state
    state.close()


@pytest.mark.parametrize("level, traceback", [(logging.INFO, False), (logging.DEBUG, True)])
def test_an_unexpected_reload_failure_keeps_the_config_and_shows_its_traceback_only_at_debug(state, caplog, level, traceback):
    before = state.config
    caplog.set_level(level, logger="sollol_exporter.state")
    assert state.reload(broken_loader) is False
    assert state.config is before and state.reload_ok == 0.0
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "config reload failed, keeping the previous config"
    assert bool(record.exc_info) is traceback


def test_an_invalid_config_is_one_line_without_a_traceback_even_at_debug(state, caplog):
    caplog.set_level(logging.DEBUG, logger="sollol_exporter.state")
    assert state.reload(refusing_loader) is False
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert not record.exc_info
    assert record.fields == {"error": "config.yml:3: scrape.timeout: must be more than 0"}


def test_a_good_reload_replaces_the_config_and_clears_the_failure(state):
    assert state.reload(broken_loader) is False
    assert state.reload(lambda path: config_module.load(None, env={})) is True
    assert state.reload_ok == 1.0
