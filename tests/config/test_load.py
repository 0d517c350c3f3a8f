"""config.load: the exporter config from its file and SOLLOL's environment, every bad file one ConfigError naming
the key and the line."""

import subprocess
import sys
from pathlib import Path

import pytest

from sollol_exporter import config

FIXTURES = Path(__file__).parent.parent / "fixtures" / "config"


@pytest.mark.parametrize("path", sorted((FIXTURES / "invalid").glob("*.yml")), ids=lambda p: p.stem)
def test_invalid_config_is_rejected_with_the_key_and_line(path, tmp_path):
    expected = path.read_text().splitlines()[0].removeprefix("# error: ")
    target = tmp_path / "config.yml"
    target.write_text(path.read_text())
    with pytest.raises(config.ConfigError) as caught:
        config.load(str(target), env={})
    assert expected in str(caught.value)
    assert str(caught.value).startswith("config.yml")


@pytest.mark.parametrize("path", sorted((FIXTURES / "valid").glob("*.yml")), ids=lambda p: p.stem)
def test_valid_configs_load(path):
    assert isinstance(config.load(str(path), env={}), config.Config)


def test_full_config_values_are_converted():
    loaded = config.load(str(FIXTURES / "valid" / "full.yml"), env={})
    assert loaded.redis.timeout == 1.5
    assert loaded.metadata.retention == 7200
    assert loaded.coordinators[0].props_interval == 600
    assert loaded.rpc_backends.static[0].grpc.port == 50051
    assert loaded.rpc_backends.discover is False
    assert loaded.dashboard.enabled is False
    assert config.coordinator_label(loaded.coordinators[0]) == "main"


def test_defaults_watch_a_local_sollol_install():
    loaded = config.load(None, env={})
    assert loaded.redis.url == "redis://localhost:6379/0"
    assert [c.url for c in loaded.coordinators] == ["http://localhost:18080"]
    assert loaded.dashboard.url == "http://localhost:8080"
    assert loaded.rpc_backends.probe == "tcp"


def test_sollol_environment_is_honoured_without_a_file():
    env = {
        "SOLLOL_REDIS_URL": "redis://10.0.0.2:6379/1",
        "SOLLOL_COORDINATOR_HOST": "10.0.0.40",
        "SOLLOL_COORDINATOR_PORT": "18081",
        "SOLLOL_DASHBOARD_PORT": "8090",
    }
    loaded = config.load(None, env=env)
    assert loaded.redis.url == "redis://10.0.0.2:6379/1"
    assert loaded.coordinators[0].url == "http://10.0.0.40:18081"
    assert loaded.dashboard.url == "http://localhost:8090"
    assert config.load(None, env={"SOLLOL_DASHBOARD_HOST": "dash"}).dashboard.url == "http://dash:8080"


def test_file_overrides_environment(tmp_path):
    target = tmp_path / "c.yml"
    target.write_text("redis:\n  url: redis://127.0.0.1:7000/0\n")
    loaded = config.load(str(target), env={"SOLLOL_REDIS_URL": "redis://other:6379/0", "SOLLOL_DASHBOARD_PORT": "8090"})
    assert loaded.redis.url == "redis://127.0.0.1:7000/0"
    assert loaded.dashboard.url == "http://localhost:8090"


def test_a_top_level_that_is_not_a_mapping_is_refused_even_with_environment_defaults(tmp_path):
    target = tmp_path / "c.yml"
    target.write_text("# a list, not settings\n- redis\n")
    with pytest.raises(config.ConfigError, match=r"^c\.yml:2: the top level must be a mapping$"):
        config.load(str(target), env={"SOLLOL_REDIS_URL": "redis://10.0.0.2:6379/1"})


def test_summary_masks_secrets():
    loaded = config.load(str(FIXTURES / "valid" / "full.yml"), env={})
    shown = config.summary(loaded)
    assert shown["coordinators"][0]["api_key"] == "<secret>"
    assert "secret" not in shown["redis"]["url"].replace("<secret>", "")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(str(tmp_path / "absent.yml"), env={})


def test_strings_keep_the_text_as_written(tmp_path):
    """YAML 1.1 reads 0123 as octal 83 and 1_000 as 1000: a key or name must stay what the user typed."""
    target = tmp_path / "c.yml"
    target.write_text("coordinators:\n  - url: http://10.0.0.40:18080\n    name: 1_000\n    api_key: 0123\n")
    loaded = config.load(str(target), env={})
    assert (loaded.coordinators[0].api_key, loaded.coordinators[0].name) == ("0123", "1_000")


def test_summary_masks_secrets_in_every_url():
    loaded = config.load(None, env={"SOLLOL_REDIS_URL": "redis://user:pw-one@h:6379/0?password=pw-two"})
    loaded.coordinators[0].url = "http://user:pw-three@h:18080/?token=pw-four"
    loaded.dashboard.url = "http://token-five@h:8080/?api_key=pw-six"
    shown = repr(config.summary(loaded))
    assert not any(f"-{n}" in shown for n in ("one", "two", "three", "four", "five", "six"))


# Numbers YAML reads at any length: hexadecimal (0x1f), octal (017) and sexagesimal ones (1:30:00) escape Python's
# limit of 4300 decimal digits, and the longest of them are past what Python turns into text or a float.
HUGE_HEX = "0x" + "f" * 4000
HUGE_NUMBERS = {
    "a duration past float's range": ("redis:\n  timeout: 0x" + "f" * 400 + "\n", "config.yml:2: redis.timeout: duration out of range"),
    "a longer one": (f"redis:\n  timeout: {HUGE_HEX}\n", "config.yml:2: redis.timeout: duration out of range"),
    "a negative one": (f"redis:\n  timeout: -{HUGE_HEX}\n", "config.yml:2: redis.timeout: duration out of range"),
    "sexagesimal": ("scrape:\n  timeout: 1" + ":59" * 3000 + "\n", "config.yml:2: scrape.timeout: duration out of range"),
    "octal": ("metadata:\n  retention: 0" + "7" * 5000 + "\n", "config.yml:2: metadata.retention: duration out of range"),
    "true or false": (f"redis:\n  routing_stream: {HUGE_HEX}\n", "config.yml:2: redis.routing_stream: expected true or false"),
    "a count": (f"redis:\n  scan_count: {HUGE_HEX}\n", "config.yml:2: redis.scan_count: too large"),
    "a negative count": (f"redis:\n  scan_count: -{HUGE_HEX}\n", "config.yml:2: redis.scan_count: expected a whole number >= 0"),
    "a choice": (f"rpc_backends:\n  probe: {HUGE_HEX}\n", "config.yml:2: rpc_backends.probe: must be one of 'tcp', 'grpc'"),
}


@pytest.mark.parametrize("text, error", HUGE_NUMBERS.values(), ids=HUGE_NUMBERS.keys())
def test_a_number_of_thousands_of_digits_is_refused_at_its_key(text, error, tmp_path):
    target = tmp_path / "config.yml"
    target.write_text(text)
    with pytest.raises(config.ConfigError) as caught:
        config.load(str(target), env={})
    assert str(caught.value).startswith(error), caught.value
    assert "\n" not in str(caught.value)


def test_a_number_of_thousands_of_digits_is_a_string_as_written(tmp_path):
    target = tmp_path / "config.yml"
    target.write_text(f"coordinators:\n  - url: http://127.0.0.1:1\n    name: {HUGE_HEX}\n    api_key: {HUGE_HEX}\n")
    loaded = config.load(str(target), env={})
    assert loaded.coordinators[0].api_key == loaded.coordinators[0].name == HUGE_HEX
    assert config.summary(loaded)["coordinators"][0]["api_key"] == "<secret>"


MEGABYTE = 1_000_000


def test_a_value_of_a_megabyte_is_read_in_linear_time(tmp_path):
    """Every string of the config goes through the redactor's patterns: quadratic ones took 25 s for a value of
    100 KB, minutes for a megabyte. A process of its own, so that it can be stopped."""
    loads, refused = tmp_path / "loads.yml", tmp_path / "refused.yml"
    loads.write_text("coordinators:\n  - url: http://127.0.0.1:1\n    name: " + "a-" * (MEGABYTE // 2) + "\n")
    refused.write_text("scrape:\n  timeout: " + "a." * (MEGABYTE // 2) + "\n")
    script = (
        "import sys\n"
        "from sollol_exporter import config\n"
        "print(len(config.load(sys.argv[1], env={}).coordinators[0].name))\n"
        "try:\n"
        "    config.load(sys.argv[2], env={})\n"
        "except config.ConfigError as err:\n"
        "    print(str(err)[:60])\n"
    )
    try:
        result = subprocess.run([sys.executable, "-c", script, str(loads), str(refused)], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("reading a config value of a megabyte took more than a minute: quadratic again?")
    assert result.stdout.splitlines() == [str(MEGABYTE), "refused.yml:2: scrape.timeout: expected a duration such as 5"], result.stderr
