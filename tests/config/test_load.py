"""config.load: the exporter config from its file and SOLLOL's environment, every bad file one ConfigError naming
the key and the line."""

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
