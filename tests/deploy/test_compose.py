"""docker-compose.yml and deploy/compose/host-network.yml, checked without a Docker engine: the Compose
Specification schema, merging and interpolation as `docker compose config` does them, mounts, images, every port on
loopback unless told otherwise, no default Grafana password, an exporter environment that the exporter really
reads, and a host-network variant whose services still find each other and still listen on loopback only."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from sollol_exporter import cli, config
from tests.deploy import compose

ROOT = Path(__file__).resolve().parent.parent.parent
MAIN = ROOT / "docker-compose.yml"
HOST_NETWORK = ROOT / "deploy" / "compose" / "host-network.yml"
COMPOSE = yaml.safe_load(MAIN.read_text())
CACHE = Path(os.environ.get("SOLLOL_EXPORTER_CACHE", Path.home() / ".cache" / "sollol-exporter"))
PASSWORD = {"GRAFANA_ADMIN_PASSWORD": "a password chosen by the user"}
LOOPBACK = "127.0.0.1"


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
            source, _target, *mode = volume.split(":")
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


def example_env() -> tuple[dict[str, str], dict[str, str]]:
    """.env.example: the variables it sets, and those it documents commented out (`#NAME=default`)."""
    active, commented = {}, {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if match := re.fullmatch(r"(#?)([A-Z][A-Z0-9_]*)=(.*)", line):
            (commented if match.group(1) else active)[match.group(2)] = match.group(3)
    return active, commented


def published(port: str) -> tuple[str, str, str]:
    """A short-syntax port as (host address, host port, container port); "" for all interfaces."""
    parts = port.split(":")
    assert len(parts) <= 3 and "/" not in port and "[" not in port, f"{port}: a form this check does not read"
    return tuple([""] * (3 - len(parts)) + parts)


def test_published_port_forms():
    assert published("127.0.0.1:9877:9877") == ("127.0.0.1", "9877", "9877")
    assert published("3000:3000") == ("", "3000", "3000")
    assert published("3000") == ("", "", "3000")


def test_every_published_port_is_on_loopback_and_the_exporter_on_9877():
    stack = compose.render([MAIN], PASSWORD)
    ports = {name: [published(p) for p in s.get("ports", [])] for name, s in stack["services"].items() if s.get("ports")}
    assert set(ports) == {"sollol-exporter", "prometheus", "alertmanager", "grafana"}
    assert all(address == LOOPBACK for bindings in ports.values() for address, _, _ in bindings), ports
    assert ports["sollol-exporter"] == [(LOOPBACK, "9877", cli.DEFAULT_LISTEN.rsplit(":", 1)[1])]
    assert ports["grafana"] == [(LOOPBACK, "3000", "3000")]


def test_grafana_opens_to_the_network_only_when_told():
    stack = compose.render([MAIN], PASSWORD | {"GRAFANA_LISTEN": "0.0.0.0", "GRAFANA_PORT": "3300"})
    assert stack["services"]["grafana"]["ports"] == ["0.0.0.0:3300:3000"]


@pytest.mark.parametrize("files", [[MAIN], [MAIN, HOST_NETWORK]], ids=["main", "host-network"])
@pytest.mark.parametrize("env", [{}, {"GRAFANA_ADMIN_PASSWORD": ""}, example_env()[0]], ids=["unset", "empty", "env-example"])
def test_no_default_grafana_password_and_the_error_says_what_to_do(files, env):
    with pytest.raises(compose.MissingVariable) as missing:
        compose.render(files, env)
    assert missing.value.name == "GRAFANA_ADMIN_PASSWORD"
    assert "GRAFANA_ADMIN_PASSWORD" in missing.value.message and ".env" in missing.value.message
    assert "no default" in missing.value.message


def test_the_grafana_password_is_the_one_set():
    grafana = compose.render([MAIN], PASSWORD)["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == PASSWORD["GRAFANA_ADMIN_PASSWORD"]
    template = COMPOSE["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", template)  # required: no default to fall back on


@pytest.mark.parametrize("path", [MAIN, HOST_NETWORK], ids=["main", "host-network"])
def test_every_template_is_well_formed_and_every_variable_documented(path):
    loaded = compose.load(path)
    names = compose.variables(loaded)
    assert names
    every = names | compose.variables(COMPOSE)
    compose.interpolate(compose.merge(compose.load(MAIN), loaded), {name: "1" for name in every})  # no InvalidTemplate
    active, commented = example_env()
    readme = (ROOT / "README.md").read_text()
    for name in names:
        assert name in active or name in commented, f"{name} is not in .env.example"
        assert f"`{name}`" in readme, f"{name} is not in the README"


def test_the_template_checker_refuses_what_compose_refuses():
    for text in ("${}", "${1X}", "${X:x}", "$ ", "${X"):
        with pytest.raises(compose.InvalidTemplate):
            compose.substitute(text, {})
    assert compose.substitute("$$X ${X:-a} ${X-b} ${Y:+c} $Y", {"X": "", "Y": "y"}) == "$X a  c y"


def test_exporter_environment_is_what_the_exporter_reads():
    environment = COMPOSE["services"]["sollol-exporter"]["environment"]
    active, commented = example_env()
    readme = (ROOT / "README.md").read_text()
    for key, value in environment.items():
        default = re.fullmatch(r"\$\{(\w+):-(.*)\}", value)
        assert default and default.group(1) == key, key
        # commented out, so that each compose file's own default applies (localhost with host networking)
        assert key not in active and commented[key] == default.group(2), key
        assert f"`{key}`" in readme, key
        sentinel = "1234" if key.endswith("PORT") else ("redis://sentinel:1/0" if key.endswith("URL") else "sentinel")
        changed = config.load(None, env={key: sentinel})
        assert changed != config.load(None, env={}), f"{key} changes nothing in the exporter"
    loaded = config.load(None, env=compose.render([MAIN], PASSWORD)["services"]["sollol-exporter"]["environment"])
    assert loaded.redis.url == "redis://host.docker.internal:6379/0"
    assert loaded.coordinators[0].url == "http://host.docker.internal:18080"
    assert loaded.dashboard.url == "http://host.docker.internal:8080"


# -- deploy/compose/host-network.yml -------------------------------------------------------------------------------

# Where each program listens when its command or environment does not say.
DEFAULT_LISTEN = {"sollol-exporter": cli.DEFAULT_LISTEN, "prometheus": "0.0.0.0:9090", "alertmanager": ":9093",
                  "grafana": "0.0.0.0:3000"}


def host_network(env: dict[str, str] | None = None) -> dict:
    return compose.render([MAIN, HOST_NETWORK], PASSWORD | (env or {}))["services"]


def listen_address(name: str, service: dict) -> tuple[str, str]:
    """The address and port a service listens on inside its network namespace."""
    if name == "grafana":
        address, port = DEFAULT_LISTEN[name].rsplit(":", 1)
        environment = service.get("environment", {})
        return environment.get("GF_SERVER_HTTP_ADDR", address), environment.get("GF_SERVER_HTTP_PORT", port)
    flags = [a.split("=", 1)[1] for a in service.get("command", []) if a.startswith("--web.listen-address=")]
    address, port = (flags[-1] if flags else DEFAULT_LISTEN[name]).rsplit(":", 1)
    return address or "0.0.0.0", port


def host_loopback_listeners(services: dict) -> dict[str, str]:
    """Port on the host's 127.0.0.1 -> the service answering there: host-network services and published ports."""
    listeners = {}
    for name, service in services.items():
        if service.get("profiles"):
            continue
        if service.get("network_mode") == "host":
            address, port = listen_address(name, service)
            if address in (LOOPBACK, "0.0.0.0"):
                listeners[port] = name
        for address, host_port, _ in map(published, service.get("ports", [])):
            if address in (LOOPBACK, "", "0.0.0.0"):
                listeners[host_port] = name
    return listeners


def resolve(service: dict, host: str) -> str | None:
    """A host name as a host-network container resolves it: localhost, or its extra_hosts."""
    if host == "localhost":
        return LOOPBACK
    found = [entry.split(":", 1)[1] for entry in service.get("extra_hosts", []) if entry.split(":", 1)[0] == host]
    return found[-1] if found else None


def test_host_network_is_valid_against_the_compose_specification_schema():
    jsonschema.Draft201909Validator(compose_schema()).validate(compose.render([MAIN, HOST_NETWORK], PASSWORD))
    assert {name for name, s in host_network().items() if s.get("network_mode") == "host"} == {
        "sollol-exporter", "prometheus", "grafana"}


def test_host_network_services_publish_nothing_and_listen_on_loopback_only():
    services = host_network()
    for name, service in services.items():
        if service.get("network_mode") != "host":
            continue
        assert "ports" not in service and "networks" not in service, name  # ports are an error in the host's network
        assert listen_address(name, service)[0] == LOOPBACK, name
    assert listen_address("sollol-exporter", services["sollol-exporter"]) == (LOOPBACK, "9877")
    args = cli.parser().parse_args(services["sollol-exporter"]["command"])  # the real exporter accepts the flag
    assert args.listen == f"{LOOPBACK}:9877"
    assert all(address == LOOPBACK for s in services.values() for address, _, _ in map(published, s.get("ports", [])))


def test_host_network_prometheus_keeps_its_flags_and_reaches_every_target():
    services = host_network()
    prometheus = services["prometheus"]
    main_flags = compose.render([MAIN], PASSWORD)["services"]["prometheus"]["command"]
    assert prometheus["command"] == [*main_flags, f"--web.listen-address={LOOPBACK}:9090"]
    config_file = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
    targets = {job["job_name"]: target for job in config_file["scrape_configs"]
               for static in job["static_configs"] for target in static["targets"]}
    targets["alertmanager"] = config_file["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
    listeners = host_loopback_listeners(services)
    expected = {"sollol": "sollol-exporter", "prometheus": "prometheus", "alertmanager": "alertmanager"}
    assert set(targets) == set(expected)
    for job, target in targets.items():
        host, port = target.rsplit(":", 1)
        assert resolve(prometheus, host) == LOOPBACK, target
        assert listeners.get(port) == expected[job], target


def test_host_network_grafana_reaches_its_data_sources_and_checks_its_own_port():
    for env in ({}, {"GRAFANA_LISTEN": "0.0.0.0", "GRAFANA_PORT": "3300"}):
        services = host_network(env)
        grafana = services["grafana"]
        listeners = host_loopback_listeners(services)
        datasources = yaml.safe_load((ROOT / "grafana/provisioning/datasources/sollol.yml").read_text())["datasources"]
        for source in datasources:
            host, port = re.match(r"http://([\w-]+):(\d+)", source["url"]).groups()
            assert resolve(grafana, host) == LOOPBACK and listeners.get(port) == host, source["url"]
        address, port = listen_address("grafana", grafana)
        assert (address, port) == (env.get("GRAFANA_LISTEN", LOOPBACK), env.get("GRAFANA_PORT", "3000"))
        assert grafana["healthcheck"]["test"][-1] == f"http://{address}:{port}/api/health"


def test_host_network_exporter_reads_sollol_on_the_hosts_loopback():
    exporter = host_network()["sollol-exporter"]
    health = re.search(r"http://([\d.]+):(\d+)/-/healthy", " ".join(exporter["healthcheck"]["test"]))
    assert health.groups() == listen_address("sollol-exporter", exporter)
    main_environment = COMPOSE["services"]["sollol-exporter"]["environment"]
    override = compose.load(HOST_NETWORK)["services"]["sollol-exporter"]["environment"]
    for key, value in override.items():  # the same variables, the host's loopback instead of host.docker.internal
        assert value == main_environment[key].replace("host.docker.internal", "localhost"), key
    loaded = config.load(None, env=exporter["environment"])
    assert loaded.redis.url == "redis://localhost:6379/0"
    assert loaded.coordinators[0].url == "http://localhost:18080"
    assert loaded.dashboard.url == "http://localhost:8080"
    chosen = host_network({"SOLLOL_REDIS_URL": "redis://10.0.0.5:6379/0"})["sollol-exporter"]["environment"]
    assert chosen["SOLLOL_REDIS_URL"] == "redis://10.0.0.5:6379/0"


def test_the_merge_follows_compose():
    base = {"command": ["a"], "extra_hosts": ["x:1"], "ports": ["1:1"], "environment": {"A": "1", "B": "2"}}
    override = {"command": ["b"], "extra_hosts": ["y:2"], "ports": compose.Reset(), "environment": {"B": "3"}}
    assert compose.merge(base, override) == {"command": ["b"], "extra_hosts": ["x:1", "y:2"], "environment": {"A": "1", "B": "3"}}
