"""Running one in-process collection, or one collector on a hand-built Snapshot, and reading it as Prometheus text."""

from __future__ import annotations

import yaml
from prometheus_client.exposition import generate_latest

from sollol_exporter import config as config_module
from sollol_exporter.scrape import Scraper
from tests.support.exporter import parse


class _Families:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def make_config(tmp_path, data: dict) -> config_module.Config:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    return config_module.load(str(path), env={})


def base_config(redis_url: str, **sections) -> dict:
    """A config that talks only to the given servers: nothing on default ports is contacted."""
    data = {
        "redis": {"url": redis_url, "timeout": "1s"},
        "coordinators": [],
        "dashboard": {"enabled": False},
        "rpc_backends": {"timeout": "500ms"},
        "ollama": {"timeout": "1s"},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def events_only_config(redis_url: str) -> dict:
    """A config that reads Redis and its events and probes nothing SOLLOL names."""
    return base_config(redis_url, ollama={"discover": False}, rpc_backends={"discover": False})


def text_of(scraper: Scraper, budget: float = 5.0) -> str:
    return generate_latest(_Families(scraper.collect(budget))).decode()


def collect(scraper: Scraper, budget: float = 5.0) -> dict:
    return parse(text_of(scraper, budget))


def rendered(collector, snapshot) -> dict:
    """What one collector renders for `snapshot`, through the text format: {(sample name, sorted labels): value}.
    A family without samples renders nothing, as on a real scrape."""
    return parse(generate_latest(_Families(list(collector.collect(snapshot)))).decode())
