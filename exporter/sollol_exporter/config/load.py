"""Loading the exporter config: SOLLOL's own environment as defaults, the file over them, checked as a whole.

Whatever the file holds, loading ends in a Config or a ConfigError, never another exception, and no error message
carries a secret: every secret the config holds is told to the redactor before anything can fail.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import typing
from typing import Any

from sollol_exporter import redact
from sollol_exporter.config import checks, schema, yaml_source
from sollol_exporter.config.model import Config
from sollol_exporter.config.secret_files import read_secret_file
from sollol_exporter.config.yaml_source import ConfigError, Source
from sollol_exporter.peers import COORDINATOR_PORT, DASHBOARD_PORT

log = logging.getLogger(__name__)


def load(path: str | None, env: typing.Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file (None: defaults plus environment)."""
    env = os.environ if env is None else env
    where = os.path.basename(path) if path else "config"
    try:
        return _load(path, env, where)
    except ConfigError as err:
        raise ConfigError(redact.text(str(err))) from None
    except Exception as err:  # a bug in here must still end as one clear line, and may not echo a value
        log.debug("configuration loader failed", exc_info=True)
        raise ConfigError(f"{where}: cannot load the configuration ({type(err).__name__})") from None


def _load(path: str | None, env: typing.Mapping[str, str], where: str) -> Config:
    source = Source(where)
    raw: Any = {}
    if path:
        raw = yaml_source.parse(yaml_source.read_text(path, where), source)
    merged = _merge(environment_defaults(env), raw) if isinstance(raw, dict) else raw  # else refused by build
    _register_secrets(merged, (), source)
    config = schema.build(Config, merged, source)
    checks.check(config, source)
    return dataclasses.replace(config, declared=declared_parts(raw, config))


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


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _register_secrets(value: Any, path: tuple, source: Source) -> None:
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
        as_text = source.texts.get(path)  # a number of thousands of digits has a text, but no str()
        redact.register(str(value) if as_text is None else as_text)
    if name.endswith("_file") and redact.is_secret_name(name.removesuffix("_file")) and isinstance(value, str):
        _register_file_secret(value)


def _register_file_secret(path: str) -> None:
    """The content of a key file, if it is readable now; the file is read again, and checked, when used."""
    try:
        read_secret_file(os.path.expanduser(path))
    except (OSError, ValueError):
        pass
