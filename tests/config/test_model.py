"""The schemas' numbers: every duration and count of the exporter config (and of the web config's file) says
whether 0 is allowed, and the exporter config enforces it at the line of the setting."""

import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from sollol_exporter import config
from sollol_exporter.web.config import WebConfigFile

# What a list of sections needs besides the field under test, to be valid.
LIST_ITEM_BASE = {"static": {"address": "10.0.0.50"}, "coordinators": {"url": "http://10.0.0.40:18080"}}


def numeric_fields(cls, path=()):
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


def by_name(cls) -> dict:
    return dict((".".join(map(str, path)).replace(".0.", "[0]."), (path, spec)) for path, spec in numeric_fields(cls))


NUMERIC_FIELDS = by_name(config.Config)
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


def kind_of(name: str, spec: dataclasses.Field) -> str | None:
    return "port" if name.endswith("port") else ("duration" if spec.metadata.get("duration") else "count" if spec.metadata.get("count") else None)


@pytest.mark.parametrize("schema", [config.Config, WebConfigFile], ids=["exporter config", "web config"])
def test_every_duration_and_count_says_whether_zero_is_allowed(schema):
    """A new number in the schema must be declared a duration or a count, and so say what 0 does (or refuse it)."""
    fields = by_name(schema)
    for name, (_, spec) in fields.items():
        kind = kind_of(name, spec)
        assert kind is not None, f"{name}: neither a duration nor a count"
        if kind != "port":
            assert "zero" in spec.metadata, name
    assert len(fields) >= (20 if schema is config.Config else 2)


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
