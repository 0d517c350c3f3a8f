"""The one schema walker, shared by the exporter config and the web config: dataclasses from parsed YAML, every
problem `file:line: dotted.key: what`, in the strict dialect or in Go's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from sollol_exporter import config
from sollol_exporter.config import schema, yaml_source
from sollol_exporter.config.schema import GO_YAML, STRICT, count, duration, internal
from sollol_exporter.config.yaml_source import ConfigError, Source
from sollol_exporter.web.config import WebConfigError
from sollol_exporter.web.config import load as load_web


@dataclass
class Inner:
    name: str = "inner"
    flag: bool = True


@dataclass
class Sample:
    text: str = "default"
    flag: bool = False
    number: int = 7
    steps: int = count(3, maximum=10)
    wait: float = duration(1.0)
    mode: Literal["off", "on"] = "on"
    names: list[str] = field(default_factory=lambda: ["a"])
    labels: dict[str, str] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)
    hidden: int = internal(0)


def build(text: str, dialect=STRICT) -> Sample:
    source = Source("s.yml")
    return schema.build(Sample, yaml_source.parse(text, source), source, dialect)


def refusal(text: str, dialect=STRICT) -> str:
    with pytest.raises(ConfigError) as caught:
        build(text, dialect)
    return str(caught.value)


def test_every_kind_of_field_is_read():
    built = build("text: hello\nflag: true\nnumber: 0\nsteps: 10\nwait: 1m30s\nmode: off\nnames: [x, y]\n"
                  "labels: {a: b, '1': '2'}\ninner: {name: n, flag: false}\nitems:\n  - name: first\n  - {}\n")
    assert built == Sample(text="hello", flag=True, number=0, steps=10, wait=90.0, mode="off", names=["x", "y"],
                           labels={"a": "b", "1": "2"}, inner=Inner("n", False), items=[Inner("first"), Inner()])


def test_what_the_file_leaves_out_keeps_its_default():
    assert build("{}") == Sample()
    assert build("inner: {name: n}").inner == Inner(name="n", flag=True)


@pytest.mark.parametrize(("text", "error"), [
    ("txet: x", "s.yml:1: txet: unknown key (did you mean 'text'?)"),
    ("inner:\n  colour: red", "s.yml:2: inner.colour: unknown key (known: name, flag)"),
    ("hidden: 1", "s.yml:1: hidden: unknown key (known: text, flag, number, steps, wait, mode, names, labels, inner, items)"),
    ("flag: maybe", "s.yml:1: flag: expected true or false, got 'maybe'"),
    ("number: -1", "s.yml:1: number: expected a whole number >= 0, got -1"),
    ("number: 1.5", "s.yml:1: number: expected a whole number >= 0, got 1.5"),
    ("number: 9223372036854775808", "s.yml:1: number: too large (at most 9223372036854775807)"),
    ("steps: 0", "s.yml:1: steps: must be at least 1, got 0"),
    ("steps: 11", "s.yml:1: steps: must be at most 10, got 11"),
    ("wait: 0", "s.yml:1: wait: must be longer than 0, got 0"),
    ("wait: soon", "s.yml:1: wait: expected a duration such as 500ms, 30s, 1m30s, 2h or 1d, got 'soon'"),
    ("wait: 300y", "s.yml:1: wait: duration out of range (0 to about 292y), got '300y'"),
    ("mode: sometimes", "s.yml:1: mode: must be one of 'off', 'on', got 'sometimes'"),
    ("names: x", "s.yml:1: names: expected a list, got str"),
    ("names:\n  - [x]", "s.yml:2: names[0]: expected a string, got list"),
    ("labels: [a]", "s.yml:1: labels: expected a mapping, got list"),
    ("labels:\n  a: {b: c}", "s.yml:2: labels.a: expected a string, got dict"),
    ("inner: 3", "s.yml:1: inner: expected a mapping, got int"),
    ("items:\n  - {}\n  - nme: x", "s.yml:3: items[1].nme: unknown key (did you mean 'name'?)"),
    ("text: true", "s.yml:1: text: expected a string, got bool"),
    ("text:", "s.yml:1: text: expected a string, got NoneType"),
    ("- a", "s.yml:1: the top level must be a mapping"),
    ("~", "s.yml:1: the top level must be a mapping"),
])
def test_strict_refusals_name_the_line_the_key_and_what_is_wrong(text, error):
    assert refusal(text) == error


def test_strict_strings_keep_numbers_as_written():
    assert build("text: 0123\nnames: [1_000, 1.50]\nlabels: {a: 010}").text == "0123"
    assert build("names: [1_000, 1.50]").names == ["1_000", "1.50"]
    assert build("labels: {a: 010}").labels == {"a": "010"}


def test_go_dialect_reads_null_as_the_zero_value():
    built = build("text:\nflag: ~\nnumber:\nnames:\nlabels:\ninner:\nitems: [~]\n", GO_YAML)
    assert (built.text, built.flag, built.number, built.names, built.labels) == ("", False, 0, [], {})
    assert built.inner == Inner() and built.items == [Inner()]
    assert build("~", GO_YAML) == build("# empty", GO_YAML) == Sample()
    # null is 0 where 0 has a rule of its own: still refused there
    assert refusal("steps:", GO_YAML) == "s.yml:1: steps: must be at least 1, got 0"
    assert refusal("wait: ~", GO_YAML) == "s.yml:1: wait: must be longer than 0"


def test_go_dialect_fills_a_string_with_any_scalar_as_written():
    built = build("text: yes\nnames: [true, 0x1F, 1.50, 2001-12-14]\nlabels: {a: ~}\n", GO_YAML)
    assert (built.text, built.names, built.labels) == ("yes", ["true", "0x1F", "1.50", "2001-12-14"], {"a": ""})
    assert refusal("text: [x]", GO_YAML) == "s.yml:1: text: expected a string, got list"


def test_go_dialect_is_as_strict_as_the_other_about_everything_else():
    for text in ("flag: maybe", "number: -1", "names: x", "inner: 3", "txet: x", "- a", "mode: sometimes", "steps: 11", "wait: soon"):
        assert refusal(text, GO_YAML).partition(", got")[0] == refusal(text).partition(", got")[0], text


@pytest.mark.parametrize(("text", "error"), [
    ("flag: maybe", "s.yml:1: flag: expected true or false, got str"),
    ("number: -1", "s.yml:1: number: expected a whole number >= 0, got a negative number"),
    ("number: 1.5", "s.yml:1: number: expected a whole number >= 0, got float"),
    ("steps: 11", "s.yml:1: steps: must be at most 10"),
    ("wait: soon", "s.yml:1: wait: expected a duration such as 500ms, 30s, 1m30s, 2h or 1d, got str"),
    ("wait: 300y", "s.yml:1: wait: duration out of range (0 to about 292y)"),
    ("wait: 0s", "s.yml:1: wait: must be longer than 0"),
    ("mode: sometimes", "s.yml:1: mode: must be one of 'off', 'on', got str"),
])
def test_go_dialect_names_the_type_found_never_the_value(text, error):
    """The web config holds password hashes and keys: one written in the wrong place must not reach the log."""
    assert refusal(text, GO_YAML) == error


def test_a_type_the_walker_does_not_know_is_a_bug_not_a_config_error():
    @dataclass
    class Odd:
        ratio: complex = 0j

    source = Source("s.yml")
    with pytest.raises(TypeError):
        schema.build(Odd, {"ratio": 1}, source)


# -- the same bad value, the same kind of error in both configs ------------------------------------------------------

def exporter_error(tmp_path, text: str) -> str:
    target = tmp_path / "config.yml"
    target.write_text(text)
    with pytest.raises(config.ConfigError) as caught:
        config.load(str(target), env={})
    return str(caught.value).removeprefix("config.yml")


def web_error(tmp_path, text: str) -> str:
    target = tmp_path / "config.yml"
    target.write_text(text)
    with pytest.raises(WebConfigError) as caught:
        load_web(str(target))
    return str(caught.value).removeprefix(str(target))


SAME_MISTAKES = {
    "not true or false": ("dashboard:\n  enabled: maybe\n", "http_server_config:\n  http2: maybe\n",
                          ":2: {}: expected true or false, got "),
    "not a list": ("ollama:\n  nodes: 10.0.0.5\n", "tls_server_config:\n  cipher_suites: TLS_AES_128_GCM_SHA256\n",
                   ":2: {}: expected a list, got str"),
    "not a mapping": ("redis: [1, 2]\n", "tls_server_config: [1, 2]\n", ":1: {}: expected a mapping, got list"),
    "a misspelt key": ("redis:\n  timout: 2s\n", "rate_limit:\n  intervall: 1s\n", ":2: {}: unknown key (did you mean"),
    "a duplicate key": ("redis:\n  timeout: 2s\n  timeout: 3s\n", "rate_limit:\n  burst: 1\n  burst: 2\n", ":3: {}: duplicate key"),
    "a negative count": ("ollama:\n  max_models: -1\n", "rate_limit:\n  burst: -1\n", ":2: {}: expected a whole number >= 0, got "),
    "not a duration": ("redis:\n  timeout: soon\n", "rate_limit:\n  interval: soon\n", ":2: {}: expected a duration such as "),
    "an unknown tag": ("redis: !vault\n  timeout: 2s\n", "basic_auth_users: !vault\n  a: b\n", ":1: {}: unknown YAML tag '!vault'"),
    "a list at the top": ("- a\n", "- a\n", ":1: the top level must be a mapping"),
    "two documents": ("a: 1\n---\n", "a: 1\n---\n", ":2: more than one YAML document"),
    "too deep": ("a: " + "[" * 40 + "]" * 40 + "\n", "a: " + "[" * 40 + "]" * 40 + "\n", ":1: nested deeper than 32 levels"),
}
WHERE = {
    "not true or false": ("dashboard.enabled", "http_server_config.http2"),
    "not a list": ("ollama.nodes", "tls_server_config.cipher_suites"),
    "not a mapping": ("redis", "tls_server_config"),
    "a misspelt key": ("redis.timout", "rate_limit.intervall"),
    "a duplicate key": ("redis.timeout", "rate_limit.burst"),
    "a negative count": ("ollama.max_models", "rate_limit.burst"),
    "not a duration": ("redis.timeout", "rate_limit.interval"),
    "an unknown tag": ("redis", "basic_auth_users"),
}


@pytest.mark.parametrize("mistake", SAME_MISTAKES)
def test_the_same_mistake_gets_the_same_error_in_both_configs(mistake, tmp_path):
    exporter_text, web_text, expected = SAME_MISTAKES[mistake]
    exporter_where, web_where = WHERE.get(mistake, ("", ""))
    assert exporter_error(tmp_path, exporter_text).startswith(expected.format(exporter_where))
    assert web_error(tmp_path, web_text).startswith(expected.format(web_where))
