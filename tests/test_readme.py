"""The README's metric table is the list the exporter emits."""

import json
import re
import time
from pathlib import Path

from sollol_exporter.sources.coordinator import _SERIES
from tests.fixtures.llamacpp_metrics import CURRENT
from tests.fixtures.sollol import GPU, RPC_NODE, VARIANT_A, VARIANT_B, VARIANT_D, fresh, routing_event
from tests.support.collect import base_config, make_config, text_of
from tests.support.replay import ReplayServer, Route

README = Path(__file__).parent.parent / "README.md"


def documented() -> set[str]:
    names = set()
    for line in README.read_text().splitlines():
        if not line.startswith("| `sollol_"):
            continue
        names.update(re.findall(r"`(sollol_[a-z_]+)`", line.split("|")[1]))
    return names


def emitted(tmp_path, redis_db, ollama, dashboard) -> set[str]:
    from sollol_exporter.scrape import Scraper

    coordinator = ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route(CURRENT, content_type="text/plain"),
                                "/props": Route({"build_info": "b1-x", "total_slots": 1, "is_sleeping": False})})
    redis_db.client.set("sollol:router:metadata", fresh(VARIANT_B))
    redis_db.client.set("sollol:gpu:10.0.0.5:11434", json.dumps(dict(GPU, timestamp=time.time())))
    redis_db.client.set("sollol:rpc:node:127.0.0.1:9", json.dumps(RPC_NODE))
    redis_db.client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event())})
    config = base_config(redis_db.url, coordinators=[{"url": coordinator.url}], dashboard={"enabled": True, "url": dashboard.url},
                         ollama={"nodes": [ollama.address]})
    scraper = Scraper(make_config(tmp_path, config))
    try:
        text_of(scraper)
        doc = json.loads(fresh(VARIANT_A))
        doc["nodes"][0]["host"] = ollama.address
        redis_db.client.set("sollol:router:metadata", json.dumps(doc), ex=30)
        text_of(scraper)
        redis_db.client.set("sollol:router:metadata", fresh(VARIANT_D), ex=30)
        redis_db.client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event())})
        text = text_of(scraper)
    finally:
        scraper.close()
        coordinator.stop()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# HELP sollol_")}


def test_every_emitted_family_is_documented_and_every_documented_one_exists(tmp_path, redis_db, ollama, dashboard):
    names = emitted(tmp_path, redis_db, ollama, dashboard)
    docs = documented()
    counters = {n for n in names if n + "_total" in docs}
    names = {n + "_total" if n in counters else n for n in names}
    made_up = {"sollol_coordinator_future_series_seconds_total"}  # a series the fixture invents for a future build
    assert names - docs - made_up == set(), "emitted but not in the README"
    translated = {"sollol_coordinator_" + name for name, _, _ in _SERIES.values()}
    reload_families = {"sollol_exporter_config_last_reload_successful", "sollol_exporter_config_last_reload_success_timestamp_seconds"}
    assert docs - names - translated - reload_families == set(), "in the README but never emitted"


def yaml_blocks() -> list[tuple[int, str]]:
    """(line, text) of every ```yaml block in the README."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if current is None and line.strip() == "```yaml":
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            blocks.append((start, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def exporter_config_blocks() -> list[tuple[int, str]]:
    """The blocks that are exporter config files: every top-level key is a config section."""
    import dataclasses

    import yaml

    from sollol_exporter.config import Config

    sections = {f.name for f in dataclasses.fields(Config) if not f.metadata.get("internal")}
    found = []
    for line, text in yaml_blocks():
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and doc and set(doc) <= sections:
            found.append((line, text))
    return found


def test_every_exporter_config_block_in_the_readme_passes_config_check(tmp_path):
    import subprocess
    import sys

    blocks = exporter_config_blocks()
    assert blocks  # at least the full list of keys with their defaults
    for line, text in blocks:
        path = tmp_path / f"readme-{line}.yml"
        path.write_text(text)
        done = subprocess.run([sys.executable, "-m", "sollol_exporter", "--config.check", "--config.file", str(path)],
                              capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, f"README.md:{line}: {done.stderr.strip()}"
