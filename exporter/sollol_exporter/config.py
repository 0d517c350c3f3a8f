"""Configuration: YAML file and SOLLOL's own environment, validated when parsed.

Every setting has a default, so an empty file (or none) monitors a default SOLLOL install on localhost.
Errors name the key and the line: `config.yml:12: coordinators[0].timout: unknown key (did you mean 'timeout'?)`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from sollol_exporter.labels import parse_address


class ConfigError(Exception):
    """A configuration problem, with the place it was found."""


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(default: float) -> Any:
    """A field holding seconds, written as a number or a Prometheus-style duration ("500ms", "2s", "5m")."""
    return field(default=default, metadata={"duration": True})


@dataclass
class RedisConfig:
    url: str = "redis://localhost:6379/0"
    timeout: float = duration(2.0)
    max_value_bytes: int = 1_048_576
    scan_count: int = 500
    routing_stream: bool = True


@dataclass
class MetadataConfig:
    retention: float = duration(3600.0)
    stats_max_age: float = duration(60.0)


@dataclass
class CoordinatorConfig:
    url: str = "http://localhost:18080"
    name: str = ""
    api_key: str = ""
    api_key_file: str = ""
    metrics: bool = True
    props_interval: float = duration(300.0)
    timeout: float = duration(5.0)
    rpc_backends: list[str] = field(default_factory=list)


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
    max_concurrency: int = 1024
    grpc: GrpcProbeConfig = field(default_factory=GrpcProbeConfig)
    static: list[RpcBackendConfig] = field(default_factory=list)


@dataclass
class OllamaConfig:
    discover: bool = True
    nodes: list[str] = field(default_factory=list)
    timeout: float = duration(2.0)
    max_models: int = 20
    host_header: str = ""
    version_interval: float = duration(600.0)


@dataclass
class DashboardConfig:
    enabled: bool = True
    url: str = "http://localhost:8080"
    timeout: float = duration(2.0)
    forget_after: float = duration(3600.0)


@dataclass
class ScrapeConfig:
    timeout: float = duration(10.0)
    timeout_margin: float = duration(0.5)


@dataclass
class Config:
    redis: RedisConfig = field(default_factory=RedisConfig)
    metadata: MetadataConfig = field(default_factory=MetadataConfig)
    coordinators: list[CoordinatorConfig] = field(default_factory=lambda: [CoordinatorConfig()])
    rpc_backends: RpcBackendsConfig = field(default_factory=RpcBackendsConfig)
    ollama: OllamaConfig = field(default_factory=OllamaConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    scrape: ScrapeConfig = field(default_factory=ScrapeConfig)


def environment_defaults(env: typing.Mapping[str, str]) -> dict[str, Any]:
    """SOLLOL's own variables, as a partial config that the file overrides."""
    partial: dict[str, Any] = {}
    if env.get("SOLLOL_REDIS_URL"):
        partial["redis"] = {"url": env["SOLLOL_REDIS_URL"]}
    host, port = env.get("SOLLOL_COORDINATOR_HOST"), env.get("SOLLOL_COORDINATOR_PORT")
    if host or port:
        partial["coordinators"] = [{"url": f"http://{host or 'localhost'}:{port or 18080}"}]
    host, port = env.get("SOLLOL_DASHBOARD_HOST"), env.get("SOLLOL_DASHBOARD_PORT")
    if host or port:
        # SOLLOL_DASHBOARD_HOST is this exporter's own: SOLLOL assumes localhost, a container cannot.
        partial["dashboard"] = {"url": f"http://{host or 'localhost'}:{port or 8080}"}
    return partial


def load(path: str | None, env: typing.Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file (None: defaults plus environment)."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    marks: dict[tuple, int] = {}
    where = "config"
    if path:
        where = os.path.basename(path)
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as err:
            raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
        raw, marks = parse_yaml(text, where)
    merged = _merge(environment_defaults(env), raw)
    config = _build(Config, merged, (), marks, where)
    _check(config, marks, where)
    return config


def parse_yaml(text: str, where: str) -> tuple[dict[str, Any], dict[tuple, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{where}{line}: invalid YAML: {problem}") from None
    if node is None:
        return {}, {}
    marks: dict[tuple, int] = {}
    value = _plain(node, (), marks, where)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}:{node.start_mark.line + 1}: the top level must be a mapping")
    return value, marks


def _plain(node: yaml.Node, path: tuple, marks: dict[tuple, int], where: str) -> Any:
    marks[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{where}:{key_node.start_mark.line + 1}: keys must be plain names")
            if key in result:
                raise ConfigError(f"{where}:{key_node.start_mark.line + 1}: {_dotted(path + (key,))}: duplicate key")
            result[key] = _plain(value_node, path + (key,), marks, where)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, path + (index,), marks, where) for index, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _dotted(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "top level"


def _fail(where: str, marks: dict[tuple, int], path: tuple, message: str) -> typing.NoReturn:
    probe = path
    while probe not in marks and probe:
        probe = probe[:-1]
    line = f":{marks[probe]}" if probe in marks else ""
    raise ConfigError(f"{where}{line}: {_dotted(path)}: {message}")


def _build(cls: type, value: Any, path: tuple, marks: dict[tuple, int], where: str) -> Any:
    if not isinstance(value, dict):
        _fail(where, marks, path, f"expected a mapping, got {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in value:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            _fail(where, marks, path + (key,), f"unknown key{hint}")
    kwargs = {}
    for name, spec in known.items():
        if name in value:
            kwargs[name] = _convert(hints[name], spec, value[name], path + (name,), marks, where)
    return cls(**kwargs)


def _convert(hint: Any, spec: dataclasses.Field | None, value: Any, path: tuple, marks, where: str) -> Any:
    origin = typing.get_origin(hint)
    if spec is not None and spec.metadata.get("duration"):
        return _duration(value, path, marks, where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, marks, where)
    if origin is list:
        if not isinstance(value, list):
            _fail(where, marks, path, f"expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(hint)
        return [_convert(item, None, element, path + (index,), marks, where) for index, element in enumerate(value)]
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            shown = ", ".join(repr(c) for c in choices if c)
            _fail(where, marks, path, f"must be one of {shown}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        raise TypeError("unions are not used in the config schema")
    if hint is bool:
        if not isinstance(value, bool):
            _fail(where, marks, path, f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            _fail(where, marks, path, f"expected a whole number >= 0, got {value!r}")
        return value
    if hint is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            _fail(where, marks, path, f"expected a string, got {type(value).__name__}")
        return value
    raise TypeError(f"unsupported config type {hint!r}")


def _duration(value: Any, path: tuple, marks, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    _fail(where, marks, path, f"expected a duration such as 500ms, 2s, 5m or 1h, got {value!r}")


def _check(config: Config, marks: dict[tuple, int], where: str) -> None:
    """Rules that span fields: URLs and addresses that parse, sane timeouts."""
    if not config.redis.url.startswith(("redis://", "rediss://", "unix://")):
        _fail(where, marks, ("redis", "url"), "must start with redis://, rediss:// or unix://")
    names = set()
    for index, coordinator in enumerate(config.coordinators):
        path = ("coordinators", index)
        if not coordinator.url.startswith(("http://", "https://")):
            _fail(where, marks, path + ("url",), "must start with http:// or https://")
        _address(coordinator.url, 80, path + ("url",), marks, where)
        for position, backend in enumerate(coordinator.rpc_backends):
            _address(backend, 50052, path + ("rpc_backends", position), marks, where)
        if coordinator.api_key and coordinator.api_key_file:
            _fail(where, marks, path, "set api_key or api_key_file, not both")
        label = coordinator_label(coordinator)
        if label in names:
            _fail(where, marks, path, f"two coordinators are both named {label!r}")
        names.add(label)
    for index, backend in enumerate(config.rpc_backends.static):
        _address(backend.address, 50052, ("rpc_backends", "static", index, "address"), marks, where)
    for index, node in enumerate(config.ollama.nodes):
        _address(node, 11434, ("ollama", "nodes", index), marks, where)
    if config.dashboard.enabled and not config.dashboard.url.startswith(("http://", "https://")):
        _fail(where, marks, ("dashboard", "url"), "must start with http:// or https://")
    if config.scrape.timeout <= config.scrape.timeout_margin:
        _fail(where, marks, ("scrape", "timeout"), "must be longer than scrape.timeout_margin")
    if config.rpc_backends.max_concurrency < 1:
        _fail(where, marks, ("rpc_backends", "max_concurrency"), "must be at least 1")


def _address(value: str, default_port: int, path: tuple, marks, where: str) -> None:
    try:
        parse_address(value, default_port)
    except ValueError as err:
        _fail(where, marks, path, str(err))


def coordinator_label(coordinator: CoordinatorConfig) -> str:
    """The `coordinator` label: the configured name, else host:port of its URL."""
    return coordinator.name or str(parse_address(coordinator.url, 80))


def summary(config: Config) -> dict[str, Any]:
    """The config as a dict with secrets masked, for the landing page."""
    data = dataclasses.asdict(config)
    for coordinator in data["coordinators"]:
        if coordinator["api_key"]:
            coordinator["api_key"] = "<secret>"
    data["redis"]["url"] = re.sub(r"://([^@/]*)@", "://<secret>@", data["redis"]["url"])
    return data
