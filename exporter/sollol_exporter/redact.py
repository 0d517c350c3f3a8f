"""Masking secrets before anything is shown or logged.

Two layers: by shape (the user information of a URL, values of parameters named like password, token or key) and
by value (every secret the config named, registered when it is loaded), so that a peer's error message echoing a
URL or a key cannot leak it either.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import quote, unquote, urlsplit

SECRET = "<secret>"

# Literal masking of very short secrets would garble every log line ("redis", "admin"); by shape they are still masked.
MIN_REGISTERED_LENGTH = 4

_SECRET_NAME = re.compile(
    r"(?:^|_)(?:pass|password|passwd|passphrase|pwd|secret|token|key|apikey|auth|authorization|"
    r"credential|credentials|sig|signature|session|sessionid|cookie|jwt)$"
)
# Every pattern here runs in time linear in the text (a config value or a log line may be a megabyte): a name or
# scheme is only tried where its run of characters begins, never again from each character inside it.
_PARAMETER = re.compile(r"(?<![A-Za-z0-9_.\-])(?P<name>[A-Za-z0-9_.\-]+)=(?P<value>[^&#\s\"'<>]*)")
# A URL's user information is scheme://userinfo@, up to the last @ of the word (a password holding an unencoded @ or /
# is masked whole). The scheme starts at its first letter that begins a word: `x-http://` is the scheme x-http.
_SCHEME_RUN = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z0-9+.\-]*://")
_SCHEME_START = re.compile(r"\b[A-Za-z]")
_WORD_END = re.compile(r"[\s\"'<>]")

_lock = threading.Lock()
_registered: set[str] = set()
_literal: re.Pattern | None = None


def is_secret_name(name: str) -> bool:
    """True for names such as password, api_key, access_token, X-Api-Key or client_secret."""
    return bool(_SECRET_NAME.search(name.lower().replace("-", "_")))


def register(secret: str) -> None:
    """Mask this value (and its percent-encoded and decoded forms) wherever text is redacted from now on."""
    global _literal
    variants = {secret, secret.strip(), quote(secret, safe=""), quote(secret), unquote(secret)}
    fresh = {v for v in variants if len(v) >= MIN_REGISTERED_LENGTH} - _registered
    if not fresh:
        return
    with _lock:
        _registered.update(fresh)
        longest_first = sorted(_registered, key=len, reverse=True)
        _literal = re.compile("|".join(re.escape(v) for v in longest_first))


def text(value: str) -> str:
    """The text with URL user information, secret-named parameters and every registered secret masked."""
    masked = by_shape(value)
    literal = _literal
    if literal is None:
        return masked
    # Leave the markers alone: a secret that happens to be "secret" must not turn <secret> into <<secret>>.
    return SECRET.join(literal.sub(SECRET, part) for part in masked.split(SECRET))


url = text  # the same masking, named for call sites that hold one URL


def by_shape(value: str) -> str:
    """The text with URL user information and secret-named parameters masked (not the registered secrets)."""
    return _PARAMETER.sub(_mask_parameter, _mask_userinfo(value))


def _mask_userinfo(value: str) -> str:
    pieces = []
    copied = position = 0  # value[:copied] is in pieces; no scheme starts before position
    while run := _SCHEME_RUN.search(value, position):
        separator = run.end() - len("://")
        position = run.end()
        start = _SCHEME_START.search(value, run.start(), separator)
        if start is None:
            continue
        end = _WORD_END.search(value, position)
        word_end = end.start() if end else len(value)
        last_at = value.rfind("@", position, word_end)
        if last_at < 0:
            position = word_end  # a later :// in this word has no @ after it either
            continue
        pieces += [value[copied:start.start()], value[start.start():run.end()], SECRET, "@"]
        copied = position = last_at + 1
    return "".join(pieces) + value[copied:] if pieces else value


def _mask_parameter(match: re.Match) -> str:
    if match["value"] and is_secret_name(match["name"]):
        return f"{match['name']}={SECRET}"
    return match[0]


def mapping(data: Any) -> Any:
    """A copy of nested dicts and lists with secret-named fields masked and every string redacted."""
    if isinstance(data, dict):
        return {key: _masked_field(key, value) for key, value in data.items()}
    if isinstance(data, list):
        return [mapping(item) for item in data]
    if isinstance(data, str):
        return text(data)
    return data


def _masked_field(key: Any, value: Any) -> Any:
    if isinstance(key, str) and is_secret_name(key) and value not in ("", None):
        return SECRET
    return mapping(value)


def secrets_in_url(value: str) -> list[str]:
    """The user name and password of a URL and its secret-named parameters, however malformed the URL is."""
    found = []
    _scheme, separator, rest = value.partition("://")
    if separator and "@" in rest:
        userinfo = rest.rpartition("@")[0]
        user, colon, password = userinfo.partition(":")
        found += [userinfo, password] if colon else [userinfo]
        if colon and not password:
            found.append(user)
    for match in _PARAMETER.finditer(value):
        if match["value"] and is_secret_name(match["name"]):
            found.append(match["value"])
    try:
        parts = urlsplit(value)
        found += [parts.password] if parts.password else []
    except ValueError:
        pass
    return [secret for secret in found if secret]
