"""Basic auth against bcrypt hashes, as exporter-toolkit does it, with verdicts cached and a decoy hash for unknown
users so that timing does not tell which users exist.

`known` answers from the cache without any bcrypt work; `verify` runs the bcrypt check (the caller decides when and
how many at once: see gate.py). Successes and failures are cached apart, so that no number of wrong passwords can
push a verified password out of the cache."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections import OrderedDict

import bcrypt

from sollol_exporter.web.config import MAX_BCRYPT_COST, MIN_BCRYPT_COST

CACHE_SIZE = 100  # per verdict: this many verified passwords, and as many refused ones
MAX_HEADER = 1024


def credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` header, None if absent or malformed."""
    if not header or len(header) > MAX_HEADER:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def cost_of(hashed: str) -> int | None:
    """The cost factor of a bcrypt hash (`$2y$10$...` is 10), None if it has none."""
    parts = hashed.split("$")
    return int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else None


class _Verdicts:
    """An LRU set of credential digests; the caller holds the lock."""

    def __init__(self, size: int):
        self.size = size
        self.keys: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, key: bytes) -> bool:
        if key in self.keys:
            self.keys.move_to_end(key)
            return True
        return False

    def add(self, key: bytes) -> None:
        self.keys[key] = None
        self.keys.move_to_end(key)
        while len(self.keys) > self.size:
            self.keys.popitem(last=False)


class BasicAuth:
    def __init__(self, cache_size: int = CACHE_SIZE):
        self._lock = threading.Lock()  # guards the caches; never held during a bcrypt
        self._valid = _Verdicts(cache_size)
        self._refused = _Verdicts(cache_size)
        self._decoys: dict[int, bytes] = {}  # cost -> hash of a random password, checked for unknown users

    def known(self, users: dict[str, str], header: str | None) -> bool | None:
        """The verdict if it needs no bcrypt (no users, no or malformed header, cached), else None."""
        if not users:
            return True
        pair = credentials(header)
        if pair is None:
            return False
        key = cache_key(users, *pair)
        with self._lock:
            if key in self._valid:
                return True
            if key in self._refused:
                return False
        return None

    def verify(self, users: dict[str, str], header: str | None) -> bool:
        """The verdict, with a bcrypt check when it is not cached; the verdict is cached."""
        verdict = self.known(users, header)
        if verdict is not None:
            return verdict
        pair = credentials(header)
        if pair is None:  # known() has already refused it
            return False
        user, password = pair
        hashed = users.get(user)
        if hashed is not None:
            verdict = _check(password.encode(), hashed.encode())
        else:
            _check(password.encode(), self._decoy(_decoy_cost(users)))
            verdict = False
        key = cache_key(users, user, password)
        with self._lock:
            (self._valid if verdict else self._refused).add(key)
        return verdict

    def _decoy(self, cost: int) -> bytes:
        decoy = self._decoys.get(cost)
        if decoy is None:
            decoy = self._decoys.setdefault(cost, bcrypt.hashpw(os.urandom(18), bcrypt.gensalt(cost)))
        return decoy


def cache_key(users: dict[str, str], user: str, password: str) -> bytes:
    """A digest of the user, its hash and the whole password: the cache never holds a password in clear, and a
    changed hash (a new web config) never matches an old verdict."""
    hashed = users.get(user) or ""
    return hashlib.sha256(b"\0".join((user.encode(), hashed.encode(), password.encode()))).digest()


def _decoy_cost(users: dict[str, str]) -> int:
    """The highest cost among the configured hashes: an unknown user costs what the dearest known one does, so
    it is never the quicker answer."""
    costs = [c for c in map(cost_of, users.values()) if c is not None]
    return min(MAX_BCRYPT_COST, max(MIN_BCRYPT_COST, max(costs, default=10)))


def _check(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password[:72], hashed)  # bcrypt reads 72 bytes; Go compares those, bcrypt 5 refuses more
    except ValueError:  # a hash bcrypt cannot read
        return False
