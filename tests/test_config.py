import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from sollol_exporter import config

FIXTURES = Path(__file__).parent / "fixtures" / "config"


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


def test_summary_masks_secrets():
    loaded = config.load(str(FIXTURES / "valid" / "full.yml"), env={})
    shown = config.summary(loaded)
    assert shown["coordinators"][0]["api_key"] == "<secret>"
    assert "secret" not in shown["redis"]["url"].replace("<secret>", "")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(str(tmp_path / "absent.yml"), env={})


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("1m30s", 90), ("1h30m", 5400), ("1d", 86400), ("1w", 604800), ("1y", 31536000), ("500ms", 0.5),
     ("2s500ms", 2.5), ("0", 0), ("1.5s", 1.5), ("2h", 7200), (3, 3), (0.25, 0.25)],
)
def test_prometheus_duration_forms_are_accepted(written, seconds, tmp_path):
    target = tmp_path / "c.yml"
    target.write_text(f"dashboard:\n  forget_after: {written}\nmetadata:\n  retention: {written}\n")
    loaded = config.load(str(target), env={})
    assert loaded.dashboard.forget_after == loaded.metadata.retention == pytest.approx(seconds)


@pytest.mark.parametrize("written", ["30s1m", "1h1h", "ms", "'1.5'", "-1", "'2'", "-1s", "1e3s", "300y", ".inf", ".nan", "true"])
def test_malformed_or_out_of_range_durations_are_refused(written, tmp_path):
    target = tmp_path / "c.yml"
    target.write_text(f"redis:\n  timeout: {written}\n")
    with pytest.raises(config.ConfigError, match=r"^c\.yml:2: redis\.timeout: (expected a duration|duration out of range)"):
        config.load(str(target), env={})


def test_strings_keep_the_text_as_written(tmp_path):
    """YAML 1.1 reads 0123 as octal 83 and 1_000 as 1000: a key or name must stay what the user typed."""
    target = tmp_path / "c.yml"
    target.write_text("coordinators:\n  - url: http://10.0.0.40:18080\n    name: 1_000\n    api_key: 0123\n")
    loaded = config.load(str(target), env={})
    assert (loaded.coordinators[0].api_key, loaded.coordinators[0].name) == ("0123", "1_000")


def test_aliases_within_the_bound_still_work(tmp_path):
    target = tmp_path / "c.yml"
    target.write_text("redis:\n  timeout: &short 300ms\nollama:\n  timeout: *short\n  nodes: &nodes [10.0.0.5, 10.0.0.6]\n"
                      "coordinators:\n  - {url: http://10.0.0.40:18080, rpc_backends: *nodes}\n")
    loaded = config.load(str(target), env={})
    assert loaded.ollama.timeout == 0.3
    assert loaded.coordinators[0].rpc_backends == ["10.0.0.5", "10.0.0.6"]


@pytest.mark.parametrize("content", [b"\xff\xfe", b"a: \xc3\x28\n", b"a: [\x00]\n", b"# x\n" * 600_000])
def test_any_bytes_end_in_a_config_error(content, tmp_path):
    target = tmp_path / "c.yml"
    target.write_bytes(content)
    with pytest.raises(config.ConfigError, match=r"^c\.yml"):
        config.load(str(target), env={})


def test_summary_masks_secrets_in_every_url():
    loaded = config.load(None, env={"SOLLOL_REDIS_URL": "redis://user:pw-one@h:6379/0?password=pw-two"})
    loaded.coordinators[0].url = "http://user:pw-three@h:18080/?token=pw-four"
    loaded.dashboard.url = "http://token-five@h:8080/?api_key=pw-six"
    shown = repr(config.summary(loaded))
    assert not any(f"-{n}" in shown for n in ("one", "two", "three", "four", "five", "six"))


# -- durations and counts: which must be above 0, which may be 0 ------------------------------------------------------

# What a list of sections needs besides the field under test, to be valid.
LIST_ITEM_BASE = {"static": {"address": "10.0.0.50"}, "coordinators": {"url": "http://10.0.0.40:18080"}}


def numeric_fields(cls=config.Config, path=()):
    """(path, field) of every number in the schema, lists of sections entered at their first item."""
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        if spec.metadata.get("internal"):
            continue
        hint = hints[spec.name]
        item = typing.get_args(hint)[0] if typing.get_origin(hint) is list else None
        if dataclasses.is_dataclass(hint):
            yield from numeric_fields(hint, (*path, spec.name))
        elif item is not None and dataclasses.is_dataclass(item):
            yield from numeric_fields(item, (*path, spec.name, 0))
        elif hint in (int, float):
            yield (*path, spec.name), spec


NUMERIC_FIELDS = dict((".".join(map(str, path)).replace(".0.", "[0]."), (path, spec)) for path, spec in numeric_fields())
DURATIONS_AND_COUNTS = {name: entry for name, entry in NUMERIC_FIELDS.items() if not name.endswith("port")}


def nested(path: tuple, leaf) -> dict:
    """The YAML document that sets `path` to `leaf`, and nothing else a list item does not need."""
    value = leaf
    for position in range(len(path) - 1, -1, -1):
        key = path[position]
        if isinstance(key, int):
            value = [{**LIST_ITEM_BASE[path[position - 1]], **value}]
        else:
            value = {key: value}
    return value


def write_setting(tmp_path, path: tuple, leaf) -> tuple[Path, int]:
    """The file, and the line of the setting in it."""
    target = tmp_path / "c.yml"
    target.write_text(yaml.safe_dump(nested(path, leaf), sort_keys=False))
    line = next(n for n, text in enumerate(target.read_text().splitlines(), 1) if text.strip().lstrip("- ").startswith(f"{path[-1]}:"))
    return target, line


def test_every_duration_and_count_says_whether_zero_is_allowed():
    """A new number in the schema must be declared a duration or a count, and so say what 0 does (or refuse it)."""
    for name, (_, spec) in NUMERIC_FIELDS.items():
        kind = "port" if name.endswith("port") else ("duration" if spec.metadata.get("duration") else "count" if spec.metadata.get("count") else None)
        assert kind is not None, f"{name}: neither a duration nor a count"
        if kind != "port":
            assert "zero" in spec.metadata, name
    assert len(DURATIONS_AND_COUNTS) >= 20


REFUSE_ZERO = sorted(name for name, (_, spec) in DURATIONS_AND_COUNTS.items() if spec.metadata.get("zero") is None)
ALLOW_ZERO = sorted(name for name, (_, spec) in DURATIONS_AND_COUNTS.items() if spec.metadata.get("zero") is not None)


def test_timeouts_and_step_sizes_are_among_the_fields_that_refuse_zero():
    """The issue's cases: a timeout or scan_count of 0 passed the check, then every read failed."""
    assert {"redis.timeout", "redis.scan_count", "coordinators[0].timeout", "rpc_backends.timeout", "ollama.timeout",
            "dashboard.timeout", "scrape.timeout", "rpc_backends.max_concurrency"} <= set(REFUSE_ZERO)
    assert set(ALLOW_ZERO) == {"metadata.retention", "coordinators[0].props_interval", "ollama.max_models",
                               "ollama.version_interval", "dashboard.forget_after", "scrape.timeout_margin"}


@pytest.mark.parametrize("name", REFUSE_ZERO)
def test_zero_is_refused_with_file_and_line(name, tmp_path):
    path, _ = DURATIONS_AND_COUNTS[name]
    target, line = write_setting(tmp_path, path, 0)
    with pytest.raises(config.ConfigError) as caught:
        config.load(str(target), env={})
    assert str(caught.value).startswith(f"c.yml:{line}: {name}: must be ")
    assert str(caught.value).endswith(("must be longer than 0, got 0", "must be at least 1, got 0"))


@pytest.mark.parametrize("name", ALLOW_ZERO)
def test_zero_is_accepted_where_it_has_a_meaning(name, tmp_path):
    path, _ = DURATIONS_AND_COUNTS[name]
    target, _ = write_setting(tmp_path, path, 0)
    loaded = config.load(str(target), env={})
    section = loaded
    for key in path[:-1]:
        section = section[key] if isinstance(key, int) else getattr(section, key)
    assert getattr(section, path[-1]) == 0


@pytest.mark.parametrize("name", sorted(DURATIONS_AND_COUNTS))
def test_negative_values_are_refused_everywhere(name, tmp_path):
    path, _ = DURATIONS_AND_COUNTS[name]
    target, line = write_setting(tmp_path, path, -1)
    with pytest.raises(config.ConfigError) as caught:
        config.load(str(target), env={})
    assert str(caught.value).startswith(f"c.yml:{line}: {name}: "), caught.value


@pytest.mark.parametrize(("name", "maximum"), [("redis.scan_count", 100_000), ("events.max_nodes", 100_000),
                                              ("events.max_models", 100_000), ("events.max_label_sets", 100_000)])
def test_counts_with_a_ceiling_refuse_more(name, maximum, tmp_path):
    path, _ = DURATIONS_AND_COUNTS[name]
    target, _ = write_setting(tmp_path, path, maximum)
    config.load(str(target), env={})
    target, line = write_setting(tmp_path, path, maximum + 1)
    with pytest.raises(config.ConfigError, match=rf"^c\.yml:{line}: {name}: must be at most {maximum}, got {maximum + 1}$"):
        config.load(str(target), env={})


# -- YAML tags ---------------------------------------------------------------------------------------------------------

TAGGED = {
    "on a list": ("ollama:\n  nodes: {tag} [10.0.0.5]\n", 2, "ollama.nodes"),
    "on a mapping": ("redis: {tag} {{timeout: 2s}}\n", 1, "redis"),
    "on a list of sections": ("coordinators: {tag}\n  - url: http://10.0.0.40:18080\n", 1, "coordinators"),
    "on a section in a list": ("coordinators:\n  - {tag} {{url: http://10.0.0.40:18080}}\n", 2, "coordinators[0]"),
    "on a value": ("redis:\n  url: {tag} redis://10.0.0.2:6379/0\n", 2, "redis.url"),
    "on the top level": ("{tag}\nredis: {{}}\n", 1, "top level"),
}
TAGS = {"!vault": "'!vault'", "!!set": "'!!set'", "!!omap": "'!!omap'", "!!python/tuple": "'!!python/tuple'",
        "!<tag:example.com,2000:x>": "'tag:example.com,2000:x'"}


@pytest.mark.parametrize("position", TAGGED)
@pytest.mark.parametrize("tag", TAGS)
def test_unknown_tags_are_refused_wherever_they_stand(position, tag, tmp_path):
    template, line, where = TAGGED[position]
    target = tmp_path / "c.yml"
    target.write_text(template.format(tag=tag))
    with pytest.raises(config.ConfigError) as caught:
        config.load(str(target), env={})
    if "set" in tag or "omap" in tag:  # YAML's own, but for other kinds of node: a scalar tagged so fails to read
        assert str(caught.value).startswith(f"c.yml:{line}: {where}: "), caught.value
    else:
        assert str(caught.value) == f"c.yml:{line}: {where}: unknown YAML tag {TAGS[tag]}"


def test_an_unknown_tag_on_a_key_is_refused(tmp_path):
    target = tmp_path / "c.yml"
    target.write_text("redis:\n  !vault timeout: 2s\n")
    with pytest.raises(config.ConfigError, match=r"^c\.yml:2: redis\.timeout: unknown YAML tag '!vault' on the key$"):
        config.load(str(target), env={})


def test_yaml_own_tags_of_the_right_kind_are_still_read(tmp_path):
    target = tmp_path / "c.yml"
    target.write_text("redis: !!map {timeout: !!float 1.5, url: !!str 'redis://10.0.0.2:6379/0'}\n"
                      "ollama: {nodes: !!seq [10.0.0.5], max_models: !!int 3}\n")
    loaded = config.load(str(target), env={})
    assert (loaded.redis.timeout, loaded.ollama.nodes, loaded.ollama.max_models) == (1.5, ["10.0.0.5"], 3)


# -- control characters in URLs and addresses -----------------------------------------------------------------------

URL_FIELDS = {
    "redis.url": (("redis", "url"), "redis://10.0.0.2:6379/0{c}"),
    "coordinators[0].url": (("coordinators", 0, "url"), "http://10.0.0.40:18080/x{c}y"),
    "dashboard.url": (("dashboard", "url"), "http://10.0.0.3:8080/{c}"),
    "ollama.nodes[0]": (("ollama", "nodes", 0), "http://10.0.0.6:11434/{c}"),
    "coordinators[0].rpc_backends[0]": (("coordinators", 0, "rpc_backends", 0), "10.0.0.45:50052{c}"),
    "rpc_backends.static[0].address": (("rpc_backends", "static", 0, "address"), "10.0.0.50:50052{c}"),
}
CONTROL = {"CR LF": "\r\nX-Injected: 1", "tab": "\t", "NUL": "\x00", "DEL": "\x7f", "NEL": "\x85",
           "line separator": "\u2028", "zero-width space": "\u200b", "space": " "}


def url_document(path: tuple, text: str) -> dict:
    if path[:2] == ("coordinators", 0):
        item = {"url": "http://10.0.0.40:18080"}
        item[path[2]] = text if len(path) == 3 else [text]
        return {"coordinators": [item]}
    if path[-1] == 0:
        return {path[0]: {path[1]: [text]}}
    if path[:2] == ("rpc_backends", "static"):
        return {"rpc_backends": {"static": [{"address": text}]}}
    return {path[0]: {path[1]: text}}


@pytest.mark.parametrize("character", CONTROL)
@pytest.mark.parametrize("name", URL_FIELDS)
def test_control_characters_are_refused_in_every_url_and_address(name, character, tmp_path):
    path, template = URL_FIELDS[name]
    target = tmp_path / "c.yml"
    clean = template.format(c="")
    target.write_text(yaml.safe_dump(url_document(path, clean)))
    config.load(str(target), env={})  # the same without the character loads
    target.write_text(yaml.safe_dump(url_document(path, template.format(c=CONTROL[character]))))
    with pytest.raises(config.ConfigError) as caught:
        config.load(str(target), env={})
    code = f"U+{ord(CONTROL[character][0]):04X}"
    assert f": {name}: holds a control character or white space ({code} at character {len(template.split('{c}')[0]) + 1})" in str(caught.value)


def test_a_control_character_in_a_url_from_the_environment_is_refused():
    with pytest.raises(config.ConfigError, match=r"^config: redis\.url: holds a control character"):
        config.load(None, env={"SOLLOL_REDIS_URL": "redis://10.0.0.2:6379/0\r\n"})
