"""Key files (`api_key_file`): read at every use, so that a rotated key is taken, and told to the redactor first."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Protocol

from sollol_exporter import files, redact

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


def unreadable_key_files(coordinators: Iterable[CoordinatorLike]) -> list[str]:
    """One line per coordinator whose `api_key_file` cannot be used now (missing, not a regular file, too large,
    not text), as `coordinators[i].api_key_file: path: reason`: the warnings of --config.check. The file is read
    again at every scrape, so it may come later."""
    problems = []
    for index, coordinator in enumerate(coordinators):
        if not coordinator.api_key_file:
            continue
        try:
            read_secret_file(os.path.expanduser(coordinator.api_key_file))
        except (OSError, ValueError) as err:
            reason = files.reason(err) if isinstance(err, OSError) else str(err)
            problems.append(f"coordinators[{index}].api_key_file: {coordinator.api_key_file}: {reason}")
    return problems
