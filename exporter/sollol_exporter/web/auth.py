"""Basic auth against bcrypt hashes, as exporter-toolkit does it: one bcrypt at a time, results cached, and a decoy
hash for unknown users so that timing does not tell which users exist."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections import OrderedDict

import bcrypt

CACHE_SIZE = 100
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


class BasicAuth:
    def __init__(self):
        self._lock = threading.Lock()  # bcrypt is CPU-bound: one at a time, as exporter-toolkit
        self._cache_lock = threading.Lock()  # never held during a bcrypt, so cached credentials never wait for one
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._decoy: bytes | None = None  # hash of a random password, checked for unknown users

    def allowed(self, users: dict[str, str], header: str | None) -> bool:
        if not users:
            return True
        pair = credentials(header)
        if pair is None:
            return False
        user, password = pair
        hashed = users.get(user)
        known = hashed is not None
        # The key is a digest of the whole password, so the cache never holds a password in clear.
        key = hashlib.sha256(b"\0".join((user.encode(), (hashed or "").encode(), password.encode()))).digest()
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        with self._lock:
            with self._cache_lock:  # checked by another request while this one waited
                cached = self._cache.get(key)
            if cached is not None:
                return cached
            if known:
                result = _check(password.encode(), hashed.encode())
            else:
                if self._decoy is None:
                    self._decoy = bcrypt.hashpw(os.urandom(18), bcrypt.gensalt(10))
                result = _check(password.encode(), self._decoy) and False
            with self._cache_lock:
                self._cache[key] = result
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return result


def _check(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password[:72], hashed)  # bcrypt reads 72 bytes; Go compares those, bcrypt 5 refuses more
    except ValueError:  # a hash bcrypt cannot read
        return False
