"""Configuration: YAML file and SOLLOL's own environment, validated when parsed.

Every setting has a default, so an empty file (or none) monitors a default SOLLOL install on localhost.
Errors name the key and the line: `config.yml:12: coordinators[0].timout: unknown key (did you mean 'timeout'?)`.
Whatever the file holds (any bytes, any YAML), loading ends in a Config or a ConfigError, never another exception,
and no error message carries a secret.
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import math
import os
import re
import types
import typing
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

import redis
import yaml

from sollol_exporter import files, redact
from sollol_exporter.addresses import parse_address
from sollol_exporter.peers import (
    COORDINATOR_PORT,
    DASHBOARD_PORT,
    OLLAMA_ACTIVITY_CHANNEL,
    OLLAMA_PORT,
    REDIS_PORT,
    RPC_ACTIVITY_CHANNEL,
    RPC_SERVER_PORT,
    TRACES_CHANNEL,
)


class ConfigError(Exception):
    """A configuration problem, with the place it was found."""


MAX_FILE_BYTES = 1_048_576
MAX_KEY_FILE_BYTES = 65_536
MAX_DEPTH = 32
MAX_NODES = 50_000
# Aliases are handy for repeating a setting, but each use is a copy: bounded, a few lines cannot expand to millions.
MAX_ALIAS_VALUES = 10_000
MAX_INT = 2**63 - 1
MAX_SHOWN = 60  # characters of a bad value echoed in an error

_NUMBER = r"\d+(?:\.\d+)?"
_UNITS = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# Prometheus' model.ParseDuration: units in this order, each at most once ("1h30m", "1m30s", "1d"), plus decimals.
_DURATION = re.compile(
    "^" + "".join(f"(?:(?P<{unit}>{_NUMBER}){'m(?!s)' if unit == 'm' else unit})?" for unit in _UNITS) + "$"
)
MAX_DURATION = (2**63 - 1) / 1e9  # Prometheus durations are int64 nanoseconds: about 292 years


def internal(default: Any) -> Any:
    """A field set by the exporter itself (from the command line or from what the file names), never from YAML."""
    return field(default=default, metadata={"internal": True})


def duration(default: float, zero: str | None = None) -> Any:
    """A field holding seconds, written as a number or a Prometheus duration ("500ms", "2s", "1m30s", "1d").
    It must be longer than 0, unless `zero` says what 0 means (a timeout of 0 would fail every read)."""
    return field(default=default, metadata={"duration": True, "zero": zero})


def count(default: int, zero: str | None = None, maximum: int = MAX_INT) -> Any:
    """A field holding a number of things, at most `maximum`. At least 1, unless `zero` says what 0 means."""
    return field(default=default, metadata={"count": True, "zero": zero, "maximum": maximum})


@dataclass
class RedisConfig:
    url: str = f"redis://localhost:{REDIS_PORT}/0"
    timeout: float = duration(2.0)
    max_value_bytes: int = count(1_048_576)
    # Redis walks this many keys per SCAN call, blocking its other clients meanwhile: a step, not the whole keyspace.
    scan_count: int = count(500, maximum=100_000)
    routing_stream: bool = True
    required: bool = False  # expected from the first scrape, even with the URL from SOLLOL_REDIS_URL (presence.py)


@dataclass
class MetadataConfig:
    retention: float = duration(3600.0, zero="only the value in the key now is used")
    stats_max_age: float = duration(60.0)


@dataclass
class CoordinatorConfig:
    url: str = f"http://localhost:{COORDINATOR_PORT}"
    name: str = ""
    api_key: str = ""
    api_key_file: str = ""
    metrics: bool = True
    props_interval: float = duration(300.0, zero="/props at every scrape")
    timeout: float = duration(5.0)
    rpc_backends: list[str] = field(default_factory=list)

    def api_key_from_file(self) -> str:
        """The key in api_key_file now (read at every use, so that a rotated key is taken); OSError or ValueError
        with the reason, never the content."""
        return read_secret_file(os.path.expanduser(self.api_key_file))


@dataclass
class GrpcProbeConfig:
    port: int = 0
    service: str = ""


@dataclass
class RpcBackendConfig:
    address: str = ""
    probe: Literal["", "tcp", "grpc", "ggml"] = ""
    grpc: GrpcProbeConfig = field(default_factory=GrpcProbeConfig)


@dataclass
class RpcBackendsConfig:
    discover: bool = True
    probe: Literal["tcp", "grpc"] = "tcp"
    timeout: float = duration(2.0)
    handshake: Literal["off", "idle"] = "off"
    handshake_backoff: float = duration(300.0)
    max_concurrency: int = count(1024)
    grpc: GrpcProbeConfig = field(default_factory=GrpcProbeConfig)
    static: list[RpcBackendConfig] = field(default_factory=list)


@dataclass
class OllamaConfig:
    discover: bool = True
    nodes: list[str] = field(default_factory=list)
    timeout: float = duration(2.0)
    max_models: int = count(20, zero="every loaded model is summed into model=\"other\"")
    host_header: str = ""
    version_interval: float = duration(600.0, zero="/api/version at every scrape")


@dataclass
class DashboardConfig:
    enabled: bool = True
    url: str = f"http://localhost:{DASHBOARD_PORT}"
    timeout: float = duration(2.0)
    forget_after: float = duration(3600.0, zero="a vanished application is dropped at once, without an up 0 series")
    required: bool = False


@dataclass
class ScrapeConfig:
    timeout: float = duration(10.0)
    timeout_margin: float = duration(0.5, zero="the whole of Prometheus' scrape timeout is used")


@dataclass
class EventChannelsConfig:
    ollama: str = OLLAMA_ACTIVITY_CHANNEL
    rpc: str = RPC_ACTIVITY_CHANNEL
    traces: str = TRACES_CHANNEL


@dataclass
class EventsConfig:
    enabled: bool = True
    channels: EventChannelsConfig = field(default_factory=EventChannelsConfig)
    max_nodes: int = count(100, maximum=100_000)
    max_models: int = count(100, maximum=100_000)
    max_label_sets: int = count(1000, maximum=100_000)


@dataclass
class Config:
    redis: RedisConfig = field(default_factory=RedisConfig)
    metadata: MetadataConfig = field(default_factory=MetadataConfig)
    coordinators: list[CoordinatorConfig] = field(default_factory=lambda: [CoordinatorConfig()])
    rpc_backends: RpcBackendsConfig = field(default_factory=RpcBackendsConfig)
    ollama: OllamaConfig = field(default_factory=OllamaConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    scrape: ScrapeConfig = field(default_factory=ScrapeConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    # Parts the config file itself names ("redis", "coordinators", "dashboard"): those are expected from the start.
    declared: frozenset[str] = internal(frozenset())
    # Collectors turned off with --no-collector.<name>: neither read nor rendered.
    disabled_collectors: frozenset[str] = internal(frozenset())


def parse_duration(value: Any) -> float:
    """Seconds, from a number or a Prometheus duration string; ValueError with the reason otherwise."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _duration_text(value.strip())
    else:
        raise ValueError("not a duration")
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DURATION:
        raise ValueError("duration out of range")
    return seconds


def _duration_text(text: str) -> float:
    if text == "0":
        return 0.0
    match = _DURATION.match(text)
    if not text or not match:
        raise ValueError("not a duration")
    return sum(float(number) * _UNITS[unit] for unit, number in match.groupdict().items() if number is not None)


def environment_defaults(env: typing.Mapping[str, str]) -> dict[str, Any]:
    """SOLLOL's own variables, as a partial config that the file overrides."""
    partial: dict[str, Any] = {}
    if env.get("SOLLOL_REDIS_URL"):
        partial["redis"] = {"url": env["SOLLOL_REDIS_URL"]}
    host, port = env.get("SOLLOL_COORDINATOR_HOST"), env.get("SOLLOL_COORDINATOR_PORT")
    if host or port:
        partial["coordinators"] = [{"url": f"http://{host or 'localhost'}:{port or COORDINATOR_PORT}"}]
    host, port = env.get("SOLLOL_DASHBOARD_HOST"), env.get("SOLLOL_DASHBOARD_PORT")
    if host or port:
        # SOLLOL_DASHBOARD_HOST is this exporter's own: SOLLOL assumes localhost, a container cannot.
        partial["dashboard"] = {"url": f"http://{host or 'localhost'}:{port or DASHBOARD_PORT}"}
    return partial


@dataclass
class _Source:
    """Where values came from: the file's name, the line of each path, and the text of each plain scalar."""

    where: str
    lines: dict[tuple, int] = field(default_factory=dict)
    texts: dict[tuple, str] = field(default_factory=dict)


def load(path: str | None, env: typing.Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file (None: defaults plus environment)."""
    env = os.environ if env is None else env
    where = os.path.basename(path) if path else "config"
    try:
        return _load(path, env, where)
    except ConfigError as err:
        raise ConfigError(redact.text(str(err))) from None
    except Exception as err:  # a bug in here must still end as one clear line, and may not echo a value
        raise ConfigError(f"{where}: cannot load the configuration ({type(err).__name__})") from None


def _load(path: str | None, env: typing.Mapping[str, str], where: str) -> Config:
    source = _Source(where)
    raw: dict[str, Any] = {}
    if path:
        raw = parse_yaml(_read_text(path, where), source)
    merged = _merge(environment_defaults(env), raw)
    _register_secrets(merged, (), source)
    config = _build(Config, merged, (), source)
    _check(config, source)
    return dataclasses.replace(config, declared=declared_parts(raw, config))


def declared_parts(raw: dict[str, Any], config: Config) -> frozenset[str]:
    """The optional parts the file itself names. SOLLOL_* variables and defaults do not count: compose sets them for
    everyone, so they say where a part would be, not that it exists."""
    parts = set()
    if isinstance(raw.get("redis"), dict) and ("url" in raw["redis"] or config.redis.required):
        parts.add("redis")
    if "coordinators" in raw:
        parts.add("coordinators")
    if isinstance(raw.get("dashboard"), dict) and ("url" in raw["dashboard"] or config.dashboard.required) and config.dashboard.enabled:
        parts.add("dashboard")
    return frozenset(parts)


def _read_text(path: str, where: str) -> str:
    try:
        data = files.read_bytes(path, MAX_FILE_BYTES)
    except files.FileTooLarge:
        raise ConfigError(f"{where}: larger than {MAX_FILE_BYTES} bytes, which no config needs; is this the right file?") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {files.reason(err)}") from None
    return _decode(data, where)


def read_secret_file(path: str) -> str:
    """The secret a key file holds (UTF-8, surrounding white space dropped), registered with the redactor before
    it is checked. OSError (not a regular file, too large, unreadable) or ValueError, with the reason only."""
    data = files.read_bytes(path, MAX_KEY_FILE_BYTES)
    try:
        secret = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        redact.register(data.decode("utf-8", "replace").strip())
        raise ValueError("not UTF-8 text") from None
    redact.register(secret)
    if any(ord(c) < 32 or ord(c) == 127 or ord(c) > 255 for c in secret):
        raise ValueError("holds characters an HTTP header cannot carry")
    return secret


def _decode(data: bytes, where: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError(f"{where}:1: the file is UTF-16; save it as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(
            f"{where}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


class _Refused(Exception):
    def __init__(self, line: int, what: str):
        super().__init__(what)
        self.line, self.what = line, what


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that stops composing past MAX_DEPTH levels or MAX_NODES nodes (PyYAML composes recursively)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.depth = 0
        self.nodes = 0

    def compose_node(self, parent, index):
        line = self.peek_event().start_mark.line + 1
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Refused(line, f"more than {MAX_NODES} YAML nodes, which no config needs")
        if self.depth >= MAX_DEPTH:
            raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def parse_yaml(text: str, source: _Source) -> dict[str, Any]:
    """The file as plain dicts, lists and scalars; the line of every path is recorded in `source`."""
    where = source.where
    try:
        node, value = _compose_and_expand(text, source)
    except _Refused as refused:
        raise ConfigError(f"{where}:{refused.line}: {refused.what}") from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        raise ConfigError(f"{where}:{line}: character U+{err.character:04X} is not allowed in YAML") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{where}{at}: invalid YAML: {_yaml_problem(err)}") from None
    if node is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}:{node.start_mark.line + 1}: the top level must be a mapping")
    return value


def _compose_and_expand(text: str, source: _Source) -> tuple[yaml.Node | None, Any]:
    loader = _BoundedLoader(text)  # checks every character first: may raise ReaderError
    try:
        node = loader.get_single_node()
        return node, (None if node is None else _Expander(loader, source).plain(node, ()))
    finally:
        loader.dispose()


def _yaml_problem(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None) or type(err).__name__
    context = getattr(err, "context", None)
    if context and problem == "second occurrence":  # "found duplicate anchor 'x'; first occurrence"
        return context.partition(";")[0]
    return f"{context}, {problem}" if context else problem


_CORE_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = _CORE_TAG + "merge"
# YAML's own tags that this loader reads, per kind of node; any other tag (`!secret`, `!!python/name:...`, `!!set`)
# is refused wherever it stands: on a value, a list, a mapping or a key. `value` and `merge` are what a plain `=` and
# `<<` resolve to: they are refused later, with their own message.
_KNOWN_TAGS = {
    yaml.ScalarNode: frozenset(_CORE_TAG + t for t in ("null", "bool", "int", "float", "str", "binary", "timestamp", "value", "merge")),
    yaml.SequenceNode: frozenset({_CORE_TAG + "seq"}),
    yaml.MappingNode: frozenset({_CORE_TAG + "map"}),
}


def unknown_tag(node: yaml.Node) -> str | None:
    """The node's tag as written (`'!secret'`, `'!!set'`) if this loader does not read it; None for YAML's own."""
    if node.tag in _KNOWN_TAGS[type(node)]:
        return None
    return _shown("!!" + node.tag.removeprefix(_CORE_TAG) if node.tag.startswith(_CORE_TAG) else node.tag)


class _Expander:
    """Turns composed nodes into plain values, following aliases within a budget and refusing cycles."""

    def __init__(self, loader: _BoundedLoader, source: _Source):
        self.loader = loader
        self.source = source
        self.remaining = loader.nodes + MAX_ALIAS_VALUES  # without aliases every node is visited exactly once
        self.open: set[int] = set()
        self.furthest = 1  # nodes reached through an alias keep their anchor's line; this is where the walk is

    def plain(self, node: yaml.Node, path: tuple) -> Any:
        line = node.start_mark.line + 1
        self.furthest = max(self.furthest, line)
        self.remaining -= 1
        if self.remaining < 0:
            raise _Refused(self.furthest, f"YAML aliases expand to more than {MAX_ALIAS_VALUES} values; refusing (an alias bomb?)")
        if id(node) in self.open:
            raise _Refused(line, f"{_dotted(path)}: a YAML alias refers to a value that contains it")
        if len(path) > MAX_DEPTH:
            raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels")
        self.source.lines[path] = line
        if tag := unknown_tag(node):
            raise _Refused(line, f"{_dotted(path)}: unknown YAML tag {tag}")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            return [self.plain(item, (*path, index)) for index, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: tuple) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                raise _Refused(line, f"{_dotted(path)}: merge keys (<<) are not supported; use an alias for the whole value")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(line, "keys must be plain names")
            key = key_node.value
            if tag := unknown_tag(key_node):
                raise _Refused(line, f"{_dotted((*path, key))}: unknown YAML tag {tag} on the key")
            if key in result:
                raise _Refused(line, f"{_dotted((*path, key))}: duplicate key")
            result[key] = self.plain(value_node, (*path, key))
        return result

    def scalar(self, node: yaml.ScalarNode, path: tuple) -> Any:
        if node.style is None:
            self.source.texts[path] = node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or "cannot read the value"
            raise _Refused(node.start_mark.line + 1, f"{_dotted(path)}: {problem}") from None
        except (ValueError, TypeError, OverflowError):
            kind = node.tag.rpartition(":")[2]
            raise _Refused(node.start_mark.line + 1, f"{_dotted(path)}: cannot read this {kind} value (malformed or too long)") from None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _register_secrets(value: Any, path: tuple, source: _Source) -> None:
    """Tell the redactor every secret the config holds, before anything can fail and echo one."""
    if isinstance(value, dict):
        for key, item in value.items():
            _register_secrets(item, (*path, key), source)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _register_secrets(item, (*path, index), source)
        return
    name = str(path[-1]) if path else ""
    if isinstance(value, str):
        for secret in redact.secrets_in_url(value):
            redact.register(secret)
    if redact.is_secret_name(name) and isinstance(value, (str, int, float)):
        redact.register(source.texts.get(path, str(value)))
    if name.endswith("_file") and redact.is_secret_name(name.removesuffix("_file")) and isinstance(value, str):
        _register_file_secret(value)


def _register_file_secret(path: str) -> None:
    """The content of a key file, if it is readable now; the file is read again, and checked, when used."""
    try:
        read_secret_file(os.path.expanduser(path))
    except (OSError, ValueError):
        pass


def _dotted(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "top level"


def _shown(value: Any) -> str:
    """A bad value for an error message: short, and never a whole pasted blob."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _fail(source: _Source, path: tuple, message: str) -> typing.NoReturn:
    probe = path
    while probe not in source.lines and probe:
        probe = probe[:-1]
    line = f":{source.lines[probe]}" if probe in source.lines else ""
    raise ConfigError(f"{source.where}{line}: {_dotted(path)}: {message}")


def _build(cls: type, value: Any, path: tuple, source: _Source) -> Any:
    if not isinstance(value, dict):
        _fail(source, path, f"expected a mapping, got {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in value:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            _fail(source, (*path, key), f"unknown key{hint}")
    kwargs = {}
    for name, spec in known.items():
        if name in value:
            kwargs[name] = _convert(hints[name], spec, value[name], (*path, name), source)
    return cls(**kwargs)


def _convert(hint: Any, spec: dataclasses.Field | None, value: Any, path: tuple, source: _Source) -> Any:
    origin = typing.get_origin(hint)
    if spec is not None and spec.metadata.get("duration"):
        seconds = _duration(value, path, source)
        if seconds == 0 and spec.metadata["zero"] is None:
            _fail(source, path, f"must be longer than 0, got {_shown(value)}")
        return seconds
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, path, source)
    if origin is list:
        if not isinstance(value, list):
            _fail(source, path, f"expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(hint)
        return [_convert(item, None, element, (*path, index), source) for index, element in enumerate(value)]
    if origin is Literal:
        choices = typing.get_args(hint)
        if value is False and "off" in choices:
            value = "off"  # YAML 1.1 reads an unquoted `off` as false
        if value not in choices:
            shown = ", ".join(repr(c) for c in choices if c)
            _fail(source, path, f"must be one of {shown}, got {_shown(value)}")
        return value
    if origin in (typing.Union, types.UnionType):
        raise TypeError("unions are not used in the config schema")
    if hint is bool:
        if not isinstance(value, bool):
            _fail(source, path, f"expected true or false, got {_shown(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            _fail(source, path, f"expected a whole number >= 0, got {_shown(value)}")
        if value > MAX_INT:
            _fail(source, path, f"too large (at most {MAX_INT})")
        if spec is not None and spec.metadata.get("count"):
            _check_count(value, spec, path, source)
        return value
    if hint is str:
        return _string(value, path, source)
    raise TypeError(f"unsupported config type {hint!r}")


def _check_count(value: int, spec: dataclasses.Field, path: tuple, source: _Source) -> None:
    if value == 0 and spec.metadata["zero"] is None:
        _fail(source, path, "must be at least 1, got 0")
    if value > spec.metadata["maximum"]:
        _fail(source, path, f"must be at most {spec.metadata['maximum']}, got {value}")


def _string(value: Any, path: tuple, source: _Source) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # As written: `api_key: 0123` is the text 0123, not the octal number 83.
        value = source.texts.get(path, str(value))
    if not isinstance(value, str):
        _fail(source, path, f"expected a string, got {type(value).__name__}")
    return value


def _duration(value: Any, path: tuple, source: _Source) -> float:
    try:
        return parse_duration(value)
    except ValueError as err:
        if str(err) == "duration out of range":
            _fail(source, path, f"duration out of range (0 to about 292y), got {_shown(value)}")
        _fail(source, path, f"expected a duration such as 500ms, 30s, 1m30s, 2h or 1d, got {_shown(value)}")


def _check(config: Config, source: _Source) -> None:
    """Rules that span fields, and everything start-up would refuse: URLs and addresses that parse, sane timeouts."""
    _check_redis_url(config.redis, source)
    names = set()
    for index, coordinator in enumerate(config.coordinators):
        path = ("coordinators", index)
        _check_http_url(coordinator.url, (*path, "url"), source)
        for position, backend in enumerate(coordinator.rpc_backends):
            _address(backend, RPC_SERVER_PORT, (*path, "rpc_backends", position), source)
        if coordinator.api_key and coordinator.api_key_file:
            _fail(source, path, "set api_key or api_key_file, not both")
        _check_header_value(coordinator.api_key, (*path, "api_key"), source)
        label = coordinator_label(coordinator)
        if label in names:
            _fail(source, path, f"two coordinators are both named {label!r}")
        names.add(label)
    _check_port(config.rpc_backends.grpc.port, ("rpc_backends", "grpc", "port"), source)
    for index, static in enumerate(config.rpc_backends.static):
        _address(static.address, RPC_SERVER_PORT, ("rpc_backends", "static", index, "address"), source)
        _check_port(static.grpc.port, ("rpc_backends", "static", index, "grpc", "port"), source)
    for index, node in enumerate(config.ollama.nodes):
        _address(node, OLLAMA_PORT, ("ollama", "nodes", index), source)
    _check_header_value(config.ollama.host_header, ("ollama", "host_header"), source)
    if config.dashboard.enabled:
        _check_http_url(config.dashboard.url, ("dashboard", "url"), source)
    if config.scrape.timeout <= config.scrape.timeout_margin:
        _fail(source, ("scrape", "timeout"), "must be longer than scrape.timeout_margin")
    channels = config.events.channels
    for kind in ("ollama", "rpc", "traces"):
        if not getattr(channels, kind) or len(getattr(channels, kind)) > 200:
            _fail(source, ("events", "channels", kind), "must be a channel name of 1 to 200 characters")
    if len({channels.ollama, channels.rpc, channels.traces}) < 3:
        _fail(source, ("events", "channels"), "the three channels must differ")


_PERCENT_ENCODE = "a user name or password holding '/', '?' or '#' must percent-encode them (%2F, %3F, %23)"


def _refuse_at_after_host(url: str, path: tuple, source: _Source) -> None:
    """An '@' past the host means userinfo the URL parser will not see, and part of a password taken as the host."""
    scheme, _, rest = url.partition("://")
    authority_end = min((rest.index(c) for c in "/?#" if c in rest), default=len(rest))
    if scheme == "unix" and authority_end == 0:
        return  # unix:///path: the socket path may hold an '@'
    if "@" in rest[authority_end:]:
        _fail(source, path, f"an '@' after the host: {_PERCENT_ENCODE}")


def _check_url_characters(url: str, path: tuple, source: _Source) -> None:
    """No control character or white space in a URL or address. Python's URL parser silently drops tabs and line
    breaks, and what was around them would end up on the request line ("GET /x\r\nX-Injected: 1/health")."""
    for position, char in enumerate(url, 1):
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf"):
            _fail(source, path, f"holds a control character or white space (U+{ord(char):04X} at character {position}); "
                                "percent-encode it")


def _check_redis_url(settings: RedisConfig, source: _Source) -> None:
    """Parse the URL exactly as redis-py will at start, without connecting."""
    path = ("redis", "url")
    _check_url_characters(settings.url, path, source)
    if not settings.url.startswith(("redis://", "rediss://", "unix://")):
        _fail(source, path, "must start with redis://, rediss:// or unix://")
    _refuse_at_after_host(settings.url, path, source)
    try:
        client = redis.Redis.from_url(
            settings.url, socket_timeout=settings.timeout, socket_connect_timeout=settings.timeout,
            decode_responses=False, retry_on_timeout=False,
        )
        try:
            client.connection_pool.make_connection()
        finally:
            client.close()
    except TypeError as err:
        option = re.search(r"argument '(\w+)'", str(err))
        _fail(source, path, f"redis-py does not know the URL option {option[1] if option else ''!r}")
    except (ValueError, redis.RedisError) as err:
        # Safe to echo: with no '@' past the host, what redis-py quotes is the host, the port or an option.
        _fail(source, path, f"redis-py cannot use this URL: {err}")


def _check_http_url(url: str, path: tuple, source: _Source) -> None:
    _check_url_characters(url, path, source)
    if not url.startswith(("http://", "https://")):
        _fail(source, path, "must start with http:// or https://")
    _refuse_at_after_host(url, path, source)
    _address(url, 80, path, source)


def _check_header_value(value: str, path: tuple, source: _Source) -> None:
    """A value sent as an HTTP header: control characters or non-Latin-1 text would fail every request."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        _fail(source, path, "holds characters an HTTP header cannot carry (only Latin-1 text)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        _fail(source, path, "holds control characters (a line break?), which an HTTP header cannot carry")


def _check_port(port: int, path: tuple, source: _Source) -> None:
    if port > 65535:
        _fail(source, path, f"port {port} is out of range")


def _address(value: str, default_port: int, path: tuple, source: _Source) -> None:
    _check_url_characters(value, path, source)
    try:
        parse_address(value, default_port)
    except ValueError as err:
        _fail(source, path, str(err))


def coordinator_label(coordinator: CoordinatorConfig) -> str:
    """The `coordinator` label: the configured name, else host:port of its URL."""
    return coordinator.name or str(parse_address(coordinator.url, 80))


def summary(config: Config) -> dict[str, Any]:
    """The config as a dict for the landing page: keys masked, and user information and secret parameters of URLs."""
    shown = dataclasses.asdict(config)
    for spec in dataclasses.fields(config):
        if spec.metadata.get("internal"):
            del shown[spec.name]
    return redact.mapping(shown)
