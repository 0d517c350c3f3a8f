"""The `--web.config.file` format of prometheus/exporter-toolkit, so that a file written for any official exporter
works here unchanged: tls_server_config, http_server_config, basic_auth_users, rate_limit.

Errors read `file:line: what` and never quote a secret (key, password hash).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import yaml

from sollol_exporter import files
from sollol_exporter.config import _BoundedLoader, _Refused, unknown_tag

MAX_FILE_BYTES = 1 << 20

CLIENT_AUTH_TYPES = ("NoClientCert", "RequestClientCert", "RequireAnyClientCert", "RequireClientCert",
                     "VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
TLS_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")

# Go's tls.CipherSuites() names (the only ones exporter-toolkit accepts) and their OpenSSL spelling. TLS 1.3
# suites are accepted and, as in Go, not configurable.
CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
}
CURVES = ("CurveP256", "CurveP384", "CurveP521", "X25519")

# The only response headers exporter-toolkit lets a file set, with the values it allows (None: any value).
EXTRA_HEADERS = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}

MIN_BCRYPT_COST, MAX_BCRYPT_COST = 4, 31
_BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

# Expected type per key: a type, a list of one type, or a nested schema (dict). `str_map`: any keys, string values.
_STR_MAP = "str_map"
SCHEMA = {
    "tls_server_config": {
        "cert": str, "key": str, "client_ca": str, "cert_file": str, "key_file": str, "client_auth_type": str,
        "client_ca_file": str, "client_allowed_sans": [str], "min_version": str, "max_version": str,
        "cipher_suites": [str], "prefer_server_cipher_suites": bool, "curve_preferences": [str],
    },
    "http_server_config": {"http2": bool, "headers": _STR_MAP},
    "basic_auth_users": _STR_MAP,
    "rate_limit": {"interval": str, "burst": int},
}


class WebConfigError(ValueError):
    """A web config file that cannot be used; the message is `file:line: what`."""


@dataclass(frozen=True)
class TLSSettings:
    cert_file: str = ""
    key_file: str = ""
    cert: str = ""
    key: str = field(default="", repr=False)
    client_ca_file: str = ""
    client_ca: str = ""
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: tuple[str, ...] = ()
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    ciphers: tuple[str, ...] = ()  # OpenSSL names
    prefer_server_cipher_suites: bool = True

    def files(self) -> tuple[str, ...]:
        return tuple(p for p in (self.cert_file, self.key_file, self.client_ca_file) if p)

    @property
    def wants_client_cert(self) -> bool:
        return self.client_auth_type not in ("NoClientCert", "RequestClientCert")

    @property
    def requires_client_cert(self) -> bool:
        return self.client_auth_type in ("RequireAnyClientCert", "RequireClientCert", "RequireAndVerifyClientCert")


@dataclass(frozen=True)
class WebConfig:
    path: str | None = None
    tls: TLSSettings | None = None
    users: dict[str, str] = field(default_factory=dict, repr=False)
    headers: dict[str, str] = field(default_factory=dict)
    rate_interval: float = 0.0
    rate_burst: int = 0
    notes: tuple[str, ...] = ()  # accepted settings that this server does not apply, for one log line at start

    def files(self) -> tuple[str, ...]:
        return ((self.path,) if self.path else ()) + (self.tls.files() if self.tls else ())


def parse_go_duration(text: str) -> float | None:
    """Seconds for a Go duration (`1s`, `1m30s`, `250ms`, `0`); None if it is not one."""
    text = text.strip()
    if text == "0":
        return 0.0
    if not text or _GO_DURATION.sub("", text):
        return None
    seconds = sum(float(number) * _GO_UNITS[unit] for number, unit in _GO_DURATION.findall(text))
    return seconds if math.isfinite(seconds) else None


def load(path: str) -> WebConfig:
    """Read and validate a web config file; raises WebConfigError."""
    try:
        raw = files.read_bytes(path, MAX_FILE_BYTES)
    except OSError as err:
        raise WebConfigError(f"{path}: cannot read: {files.reason(err)}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise WebConfigError(f"{path}:{line}: not UTF-8 text") from None
    return _Reader(path, text).read()


class _WebLoader(_BoundedLoader):
    """The exporter config's bounded loader (depth, node count), refusing aliases: a web config needs none."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _Refused(self.peek_event().start_mark.line + 1, "YAML aliases are not allowed in the web config")
        return super().compose_node(parent, index)


class _Reader:
    def __init__(self, path: str, text: str):
        self.path = path
        self.text = text
        self.lines: dict[tuple, int] = {}

    def fail(self, where: tuple | int, what: str) -> WebConfigError:
        line = where if isinstance(where, int) else self.lines.get(where, 1)
        return WebConfigError(f"{self.path}:{line}: {what}")

    def read(self) -> WebConfig:
        root = self._compose()
        if root is None:
            return WebConfig(path=self.path)
        data = self._value(root, SCHEMA, ())
        tls = self._tls(data.get("tls_server_config") or {})
        users = self._users(data.get("basic_auth_users") or {})
        http_config = data.get("http_server_config") or {}
        headers = self._headers(http_config.get("headers") or {})
        interval, burst = self._rate_limit(data.get("rate_limit") or {})
        notes = []
        if tls and tls.client_auth_type in ("RequireAnyClientCert", "RequireClientCert"):
            notes.append(f"client_auth_type {tls.client_auth_type}: client certificates must also verify against "
                         "client_ca_file (or the system CAs), as Python's TLS cannot accept unverified ones")
        if tls and tls.client_auth_type == "RequestClientCert":
            notes.append("client_auth_type RequestClientCert: client certificates are not asked for (they would not be used)")
        if http_config.get("http2"):
            notes.append("http2 is accepted but this server speaks HTTP/1.1 only")
        if (data.get("tls_server_config") or {}).get("curve_preferences"):
            notes.append("curve_preferences is accepted but OpenSSL's default groups are used")
        return WebConfig(self.path, tls, users, headers, interval, burst, tuple(notes))

    def _compose(self):
        # Composed lazily within bounds (depth, nodes): a deeply nested file stops there, before PyYAML's scanner
        # (quadratic in the nesting) or its recursive composer (RecursionError) get far.
        loader = None
        try:
            loader = _WebLoader(self.text)  # checks every character first: may raise ReaderError
            loader.get_event()  # stream start
            root = None if loader.check_event(yaml.StreamEndEvent) else loader.compose_document()
            if not loader.check_event(yaml.StreamEndEvent):
                raise self.fail(loader.peek_event().start_mark.line + 1, "more than one YAML document")
        except _Refused as refused:
            raise self.fail(refused.line, refused.what) from None
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            raise self.fail(mark.line + 1 if mark else 1, f"invalid YAML: {err.problem or err.context}") from None
        except yaml.YAMLError as err:
            raise self.fail(1, f"invalid YAML: {str(err).splitlines()[0]}") from None
        finally:
            if loader is not None:
                loader.dispose()
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
            return None
        return root

    def _value(self, node, expected, where: tuple):
        self.lines.setdefault(where, node.start_mark.line + 1)
        name = ".".join(map(str, where)) or "top level"
        if tag := unknown_tag(node):
            raise self.fail(where, f"{name}: unknown YAML tag {tag}")
        if isinstance(expected, dict) or expected == _STR_MAP:
            if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                return {}
            if not isinstance(node, yaml.MappingNode):
                raise self.fail(where, f"{name}: expected a mapping")
            result = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(key_node.start_mark.line + 1, f"{name}: keys must be strings")
                key = key_node.value
                here = (*where, key)
                self.lines[here] = key_node.start_mark.line + 1
                if tag := unknown_tag(key_node):
                    raise self.fail(here, f"{'.'.join(map(str, here))}: unknown YAML tag {tag} on the key")
                if key in result:
                    raise self.fail(key_node.start_mark.line + 1, f"{'.'.join(here)}: key given twice")
                if expected == _STR_MAP:
                    result[key] = self._value(value_node, str, here)
                    continue
                if key not in expected:
                    known = ", ".join(expected)
                    raise self.fail(key_node.start_mark.line + 1, f"{name}: unknown key {key!r} (known: {known})")
                result[key] = self._value(value_node, expected[key], here)
            return result
        if isinstance(expected, list):
            if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                return []
            if not isinstance(node, yaml.SequenceNode):
                raise self.fail(where, f"{name}: expected a list")
            return [self._value(item, expected[0], (*where, i)) for i, item in enumerate(node.value)]
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(where, f"{name}: expected a {expected.__name__}")
        if node.tag == "tag:yaml.org,2002:null":
            return expected()
        if expected is str:
            return node.value
        if expected is bool:
            if node.tag != "tag:yaml.org,2002:bool":
                raise self.fail(where, f"{name}: expected true or false")
            return node.value.lower() in ("true", "yes", "on", "y")
        if expected is int:
            if node.tag != "tag:yaml.org,2002:int" or not re.fullmatch(r"[-+]?\d{1,9}", node.value):
                raise self.fail(where, f"{name}: expected an integer")
            return int(node.value)
        raise AssertionError(expected)

    def _file(self, value: str) -> str:
        if not value:
            return ""
        return value if os.path.isabs(value) else os.path.join(os.path.dirname(os.path.abspath(self.path)), value)

    def _tls(self, section: dict) -> TLSSettings | None:
        where = ("tls_server_config",)
        if not any(section.get(k) for k in ("cert", "key", "client_ca", "cert_file", "key_file", "client_ca_file", "client_auth_type")):
            return None
        if not section.get("cert_file") and not section.get("cert"):
            raise self.fail(where, "tls_server_config: missing one of cert or cert_file")
        if not section.get("key_file") and not section.get("key"):
            raise self.fail(where, "tls_server_config: missing one of key or key_file")
        auth = section.get("client_auth_type") or "NoClientCert"
        if auth not in CLIENT_AUTH_TYPES:
            raise self.fail((*where, "client_auth_type"), f"tls_server_config.client_auth_type: invalid {auth!r} (one of {', '.join(CLIENT_AUTH_TYPES)})")
        has_ca = bool(section.get("client_ca_file") or section.get("client_ca"))
        if has_ca and auth == "NoClientCert":
            raise self.fail(where, "tls_server_config: client CA's have been configured without a Client Auth Policy")
        sans = tuple(section.get("client_allowed_sans") or ())
        if sans and auth not in ("RequireAnyClientCert", "RequireClientCert", "RequireAndVerifyClientCert"):
            raise self.fail((*where, "client_allowed_sans"),
                            "tls_server_config.client_allowed_sans requires client_auth_type to be one of RequireAnyClientCert or RequireAndVerifyClientCert")
        versions = {}
        for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
            version = section.get(key) or default
            if version not in TLS_VERSIONS:
                raise self.fail((*where, key), f"tls_server_config.{key}: unknown TLS version {version!r} (one of {', '.join(TLS_VERSIONS)})")
            versions[key] = version
        if TLS_VERSIONS.index(versions["min_version"]) > TLS_VERSIONS.index(versions["max_version"]):
            raise self.fail((*where, "min_version"), "tls_server_config: min_version is above max_version")
        ciphers: list[str] = []
        for i, name in enumerate(section.get("cipher_suites") or ()):
            if name not in CIPHER_SUITES:
                raise self.fail((*where, "cipher_suites", i), f"tls_server_config.cipher_suites: unknown cipher: {name}")
            suite = CIPHER_SUITES[name]
            if suite:
                ciphers.append(suite)
        for i, name in enumerate(section.get("curve_preferences") or ()):
            if name not in CURVES:
                raise self.fail((*where, "curve_preferences", i), f"tls_server_config.curve_preferences: unknown curve: {name}")
        return TLSSettings(
            cert_file=self._file(section.get("cert_file", "")), key_file=self._file(section.get("key_file", "")),
            cert=section.get("cert", ""), key=section.get("key", ""),
            client_ca_file=self._file(section.get("client_ca_file", "")), client_ca=section.get("client_ca", ""),
            client_auth_type=auth, client_allowed_sans=sans, min_version=versions["min_version"],
            max_version=versions["max_version"], ciphers=tuple(ciphers),
            prefer_server_cipher_suites=section.get("prefer_server_cipher_suites", True),
        )

    def _users(self, users: dict) -> dict[str, str]:
        for name, hashed in users.items():
            if not _BCRYPT_HASH.match(hashed or ""):
                raise self.fail(("basic_auth_users", name), f"basic_auth_users: the password of user {name!r} is not a bcrypt hash")
            cost = int(hashed.split("$")[2])
            if not MIN_BCRYPT_COST <= cost <= MAX_BCRYPT_COST:  # no bcrypt reads it: the user could never log in
                raise self.fail(("basic_auth_users", name), f"basic_auth_users: the hash of user {name!r} has cost {cost}; "
                                f"bcrypt accepts {MIN_BCRYPT_COST} to {MAX_BCRYPT_COST}")
        return dict(users)

    def _headers(self, headers: dict) -> dict[str, str]:
        for name, value in headers.items():
            where = ("http_server_config", "headers", name)
            if name not in EXTRA_HEADERS:
                raise self.fail(where, f'http_server_config.headers: HTTP header "{name}" can not be configured')
            allowed = EXTRA_HEADERS[name]
            if allowed and value not in allowed:
                raise self.fail(where, f"http_server_config.headers: invalid value for {name}. Expected one of: {list(allowed)}, but got: {value!r}")
            if any(c in value for c in "\r\n\0"):
                raise self.fail(where, f"http_server_config.headers: {name}: control characters in the value")
        return {name: value for name, value in headers.items() if value}

    def _rate_limit(self, section: dict) -> tuple[float, int]:
        text = section.get("interval") or "0"
        interval = parse_go_duration(text)
        if interval is None or interval < 0:
            raise self.fail(("rate_limit", "interval"), f"rate_limit.interval: not a duration: {text!r}")
        burst = section.get("burst", 0)
        if interval and burst < 1:
            raise self.fail(("rate_limit", "burst"), "rate_limit.burst: must be at least 1 when an interval is set")
        return interval, burst
