from __future__ import annotations

import pytest

from tests.support import tiers
from tests.support.exporter import ExporterProcess
from tests.support.redis_server import RedisServer
from tests.support.replay import ReplayServer, dashboard_routes, ollama_routes


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these marks
def pytest_collection_modifyitems(items):
    """Mark each test with what keeps it out of the fast tier: the binaries and services it needs (tests/support/tiers.py)."""
    for item in items:
        name = getattr(item, "originalname", item.name)
        for marker in sorted(tiers.markers_for(item.path, name, getattr(item, "fixturenames", ()))):
            item.add_marker(marker)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of the test's own, for tests that stop, restart or reconfigure it."""
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def redis_db(redis_server):
    redis_server.client.flushall()
    yield redis_server
    redis_server.client.flushall()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A random-weight GGUF model that llama-server loads in a fraction of a second."""
    from tests.support import llama

    return llama.write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.gguf")


@pytest.fixture
def workers(tmp_path):
    """Two real rpc-server workers on loopback, stopped by PID afterwards."""
    from tests.support import llama

    started = [llama.start_rpc_server(log_dir=tmp_path) for _ in range(2)]
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def ollama():
    server = ReplayServer(ollama_routes())
    yield server
    server.stop()


@pytest.fixture
def dashboard():
    server = ReplayServer(dashboard_routes())
    yield server
    server.stop()


@pytest.fixture
def start_exporter(tmp_path):
    started = []

    def start(config, **kwargs):
        exporter = ExporterProcess(config, tmp_path, **kwargs)
        started.append(exporter)
        return exporter

    yield start
    for exporter in started:
        exporter.stop()


@pytest.fixture
def scraper_for(tmp_path):
    """Builds in-process scrapers from config dicts; closes them afterwards."""
    from sollol_exporter.scrape import Scraper
    from tests.support.collect import make_config

    made = []

    def build(data):
        scraper = Scraper(make_config(tmp_path, data))
        made.append(scraper)
        return scraper

    yield build
    for scraper in made:
        scraper.close()
