"""Key files (`api_key_file`): read at every use, so that a rotated key is taken, and told to the redactor first."""

from __future__ import annotations

from sollol_exporter import files, redact

MAX_KEY_FILE_BYTES = 65_536


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
