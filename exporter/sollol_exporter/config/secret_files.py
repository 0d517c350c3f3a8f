"""Key files (`api_key_file`): read at every use, so that a rotated key is taken, and told to the redactor first."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Protocol

from sollol_exporter import files, redact
from sollol_exporter.config import yaml_source
from sollol_exporter.config.yaml_source import ConfigError, Source, dotted

MAX_KEY_FILE_BYTES = 65_536


class CoordinatorLike(Protocol):
    api_key_file: str


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


def unreadable_key_files(coordinators: Iterable[CoordinatorLike], config_path: str | None = None) -> list[str]:
    """One line per coordinator whose `api_key_file` cannot be used now (missing, not a regular file, too large,
    not text, empty), as `coordinators[i].api_key_file: path: reason`, after `config.yml:line: ` as every config error
    when the coordinators come from the file at `config_path`: the warnings of --config.check. The file is read
    again at every scrape, so it may come later."""
    source = _lines_of(config_path)
    problems = []
    for index, coordinator in enumerate(coordinators):
        if not coordinator.api_key_file:
            continue
        try:
            if not read_secret_file(os.path.expanduser(coordinator.api_key_file)):
                raise ValueError("empty: no key would be sent")
        except (OSError, ValueError) as err:
            reason = files.reason(err) if isinstance(err, OSError) else str(err)
            path = ("coordinators", index, "api_key_file")
            problem = f"{dotted(path)}: {coordinator.api_key_file}: {reason}"
            problems.append(problem if source is None else str(source.error(source.line_of(path), problem)))
    return problems


def _lines_of(config_path: str | None) -> Source | None:
    """The config file's name and the line of each of its values (None without a file)."""
    if not config_path:
        return None
    source = Source(os.path.basename(config_path))
    try:
        yaml_source.parse(yaml_source.read_text(config_path, source.where), source)
    except ConfigError:
        pass  # changed since it was loaded: its name, without lines
    return source
