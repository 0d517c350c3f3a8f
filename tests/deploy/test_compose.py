"""docker-compose.yml, checked without a Docker engine: the Compose Specification schema, mounts, images, ports,
and an exporter environment that the exporter really reads."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from sollol_exporter import config

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CACHE = Path(os.environ.get("SOLLOL_EXPORTER_CACHE", Path.home() / ".cache" / "sollol-exporter"))


def compose_schema() -> dict:
    wheels = sorted((CACHE / "schemas").glob("docker_compose-1.29.2-*.whl"))
    if not wheels:
        pytest.fail("the Compose Specification schema is fetched by scripts/test.sh; run it once")
    with zipfile.ZipFile(wheels[0]) as wheel:
        return json.loads(wheel.read("compose/config/compose_spec.json"))


def test_valid_against_the_compose_specification_schema():
    schema = compose_schema()
    # the file names draft 2019-09 with a trailing "#", which jsonschema does not look up by that spelling
    jsonschema.Draft201909Validator(schema).validate(COMPOSE)


def test_the_four_services_and_a_demo_profile():
    services = COMPOSE["services"]
    assert {"sollol-exporter", "prometheus", "alertmanager", "grafana"} <= set(services)
    demo = {name for name, s in services.items() if "demo" in s.get("profiles", [])}
    assert demo == {"demo-redis", "demo-seed"}
    for name in ("sollol-exporter", "prometheus", "alertmanager", "grafana"):
        assert "profiles" not in services[name]
        assert services[name]["restart"] == "unless-stopped"
        assert services[name]["healthcheck"]["test"][0] == "CMD"


def test_every_image_is_pinned():
    for name, service in COMPOSE["services"].items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image}"


def test_every_mounted_path_exists_and_config_is_read_only():
    named = set(COMPOSE.get("volumes", {}))
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source, target, *mode = volume.split(":")
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source}"
                assert mode == ["ro"], f"{name}: {volume} should be read-only"
            else:
                assert source in named, f"{name}: {source} is not a named volume"


def test_mounts_match_what_the_configs_expect():
    grafana = {v.split(":")[1]: v.split(":")[0] for v in COMPOSE["services"]["grafana"]["volumes"]}
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/sollol.yml").read_text())["providers"][0]
    assert grafana[provider["options"]["path"]] == "./grafana/dashboards"
    assert grafana["/etc/grafana/provisioning"] == "./grafana/provisioning"
    prometheus = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"][0] for job in prometheus["scrape_configs"]}
    assert targets["sollol"].split(":")[0] in COMPOSE["services"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0].split(":")[0] in COMPOSE["services"]
    datasources = yaml.safe_load((ROOT / "grafana/provisioning/datasources/sollol.yml").read_text())["datasources"]
    for source in datasources:
        assert re.match(r"http://([\w-]+):", source["url"]).group(1) in COMPOSE["services"]


def test_only_the_ports_users_need_and_only_grafana_on_all_interfaces():
    published = {name: s.get("ports", []) for name, s in COMPOSE["services"].items() if s.get("ports")}
    assert set(published) == {"prometheus", "alertmanager", "grafana"}
    assert all(port.startswith("127.0.0.1:") for name in ("prometheus", "alertmanager") for port in published[name])


def test_exporter_environment_is_what_the_exporter_reads():
    environment = COMPOSE["services"]["sollol-exporter"]["environment"]
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if line and not line.startswith("#"))
    readme = (ROOT / "README.md").read_text()
    for key, value in environment.items():
        default = re.fullmatch(r"\$\{(\w+):-(.*)\}", value)
        assert default and default.group(1) == key, key
        assert example[key] == default.group(2), key
        assert f"`{key}`" in readme, key
        sentinel = "1234" if key.endswith("PORT") else ("redis://sentinel:1/0" if key.endswith("URL") else "sentinel")
        changed = config.load(None, env={key: sentinel})
        assert changed != config.load(None, env={}), f"{key} changes nothing in the exporter"
    loaded = config.load(None, env={k: re.fullmatch(r"\$\{\w+:-(.*)\}", v).group(1) for k, v in environment.items()})
    assert loaded.redis.url == "redis://host.docker.internal:6379/0"
    assert loaded.coordinators[0].url == "http://host.docker.internal:18080"
    assert loaded.dashboard.url == "http://host.docker.internal:8080"
