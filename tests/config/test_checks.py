"""The exporter config's rules beyond single values: URLs and addresses as their clients will read them."""

import pytest
import yaml

from sollol_exporter import config

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


def test_a_rule_across_a_section_is_shown_at_the_section_key(tmp_path):
    """`events.channels` is reported where that key is written, not where its first entry happens to be."""
    target = tmp_path / "c.yml"
    target.write_text("events:\n  channels:\n    ollama: same\n    rpc: same\n    traces: other\n")
    with pytest.raises(config.ConfigError, match=r"^c\.yml:2: events\.channels: the three channels must differ$"):
        config.load(str(target), env={})
