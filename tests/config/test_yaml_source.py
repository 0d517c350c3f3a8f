"""Reading a config file's YAML within bounds: any bytes end in values or one ConfigError with the file and line."""

import pytest

from sollol_exporter import config, files
from sollol_exporter.config import yaml_source
from sollol_exporter.config.yaml_source import ConfigError, Source


def parse(text: str, **options):
    source = Source("f.yml")
    return yaml_source.parse(text, source, **options), source


def refusal(text: str, **options) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text, **options)
    return str(caught.value)


def test_values_come_with_the_line_of_their_key_and_the_text_as_written():
    value, source = parse("# settings\na:\n  b: 0123\n  c:\n    - x\n    - {d: 1_000}\n")
    assert value == {"a": {"b": 83, "c": ["x", {"d": 1000}]}}
    assert source.lines[("a",)] == 2 and source.lines[("a", "b")] == 3 and source.lines[("a", "c")] == 4
    assert source.lines[("a", "c", 1)] == 6 and source.lines[("a", "c", 1, "d")] == 6
    assert source.texts[("a", "b")] == "0123" and source.texts[("a", "c", 1, "d")] == "1_000"


def test_an_error_is_placed_at_the_nearest_line_the_file_holds():
    _, source = parse("a:\n  b: 1\n")
    with pytest.raises(ConfigError, match=r"^f\.yml:2: a\.b\.c\[0\]: wrong$"):
        source.fail(("a", "b", "c", 0), "wrong")
    with pytest.raises(ConfigError, match=r"^f\.yml:1: z: unknown$"):  # the document itself, then
        source.fail(("z",), "unknown")
    with pytest.raises(ConfigError, match=r"^config: redis\.url: from the environment$"):  # no file at all
        Source("config").fail(("redis", "url"), "from the environment")


def test_an_empty_file_is_an_empty_mapping_and_a_null_document_is_null():
    assert parse("# nothing\n")[0] == {}
    assert parse("---\n")[0] is None
    assert parse("~\n")[0] is None


def test_more_than_one_document_is_refused_at_the_second():
    assert refusal("a: 1\n---\nb: 2\n") == "f.yml:2: more than one YAML document"


def test_aliases_are_refused_where_a_file_may_not_use_them():
    assert parse("a: &x 1\nb: *x\n")[0] == {"a": 1, "b": 1}
    assert refusal("a: &x 1\nb: *x\n", aliases=False) == "f.yml:2: YAML aliases are not allowed in this file"


def test_the_one_size_cap_applies(tmp_path):
    path = tmp_path / "big.yml"
    path.write_bytes(b"#" * files.MAX_FILE_BYTES + b"\n")
    with pytest.raises(ConfigError, match=rf"^big\.yml: larger than {files.MAX_FILE_BYTES} bytes"):
        yaml_source.read_text(str(path), "big.yml")
    path.write_bytes(b"#" * (files.MAX_FILE_BYTES - 1) + b"\n")
    assert yaml_source.read_text(str(path), "big.yml").startswith("#")


def test_aliases_within_the_bound_still_work(tmp_path):
    target = tmp_path / "c.yml"
    target.write_text("redis:\n  timeout: &short 300ms\nollama:\n  timeout: *short\n  nodes: &nodes [10.0.0.5, 10.0.0.6]\n"
                      "coordinators:\n  - {url: http://10.0.0.40:18080, rpc_backends: *nodes}\n")
    loaded = config.load(str(target), env={})
    assert loaded.ollama.timeout == 0.3
    assert loaded.coordinators[0].rpc_backends == ["10.0.0.5", "10.0.0.6"]


def test_a_bad_value_reached_through_an_alias_is_shown_where_the_alias_is_used(tmp_path):
    target = tmp_path / "c.yml"
    target.write_text("redis:\n  timeout: &zero 0\nollama:\n  max_models: *zero\n  timeout: *zero\n")
    with pytest.raises(config.ConfigError, match=r"^c\.yml:2: redis\.timeout: must be longer than 0"):
        config.load(str(target), env={})
    target.write_text("metadata:\n  retention: &zero 0\nollama:\n  max_models: *zero\n  timeout: *zero\n")
    with pytest.raises(config.ConfigError, match=r"^c\.yml:5: ollama\.timeout: must be longer than 0"):
        config.load(str(target), env={})


@pytest.mark.parametrize("content", [b"\xff\xfe", b"a: \xc3\x28\n", b"a: [\x00]\n", b"# x\n" * 600_000])
def test_any_bytes_end_in_a_config_error(content, tmp_path):
    target = tmp_path / "c.yml"
    target.write_bytes(content)
    with pytest.raises(config.ConfigError, match=r"^c\.yml"):
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
