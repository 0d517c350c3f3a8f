"""The `--web.config.file` format of prometheus/exporter-toolkit, so that a file written for any official exporter
works here unchanged: tls_server_config, http_server_config, basic_auth_users, rate_limit.

The file is read as the exporter config is (config.yaml_source, config.schema), with Go's leniency for scalars, as
exporter-toolkit reads it; aliases are refused. Errors read `file:line: key: what` and never quote a value: any of
them may be a secret (a key, a password hash) written in the wrong place. A user name that looks like a password hash
is not shown either.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from sollol_exporter.config import schema, yaml_source
from sollol_exporter.config.durations import GO
from sollol_exporter.config.schema import count, duration
from sollol_exporter.config.yaml_source import ConfigError, Source, shown_key

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
_BCRYPT_HASH = re.compile(r"\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}")  # the whole value: fullmatch


# -- the file, as written ---------------------------------------------------------------------------------------------

@dataclass
class TLSServerSection:
    cert: str = field(default="", repr=False)
    key: str = field(default="", repr=False)
    client_ca: str = ""
    cert_file: str = ""
    key_file: str = ""
    client_auth_type: str = ""
    client_ca_file: str = ""
    client_allowed_sans: list[str] = field(default_factory=list)
    min_version: str = ""
    max_version: str = ""
    cipher_suites: list[str] = field(default_factory=list)
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = field(default_factory=list)


@dataclass
class HTTPServerSection:
    http2: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RateLimitSection:
    interval: float = duration(0.0, zero="no rate limit", notation=GO)
    # nine digits at most, as this file has always been read
    burst: int = count(0, zero="only without an interval, that is without a rate limit", maximum=999_999_999)


@dataclass
class WebConfigFile:
    tls_server_config: TLSServerSection = field(default_factory=TLSServerSection)
    http_server_config: HTTPServerSection = field(default_factory=HTTPServerSection)
    basic_auth_users: dict[str, str] = field(default_factory=dict, repr=False)
    rate_limit: RateLimitSection = field(default_factory=RateLimitSection)


# -- what the server uses ---------------------------------------------------------------------------------------------

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


def load(path: str) -> WebConfig:
    """Read and validate a web config file; raises WebConfigError."""
    source = Source(path)
    try:
        document = yaml_source.parse(yaml_source.read_text(path, path), source, aliases=False)
        written = schema.build(WebConfigFile, document, source, schema.GO_YAML)
        return _settings(path, written, source)
    except ConfigError as err:
        raise WebConfigError(str(err)) from None


def _settings(path: str, written: WebConfigFile, source: Source) -> WebConfig:
    tls = _tls(written.tls_server_config, path, source)
    users = _users(written.basic_auth_users, source)
    headers = _headers(written.http_server_config.headers, source)
    rate = written.rate_limit
    if rate.interval and rate.burst < 1:
        source.fail(("rate_limit", "burst"), "must be at least 1 when an interval is set")
    notes = []
    if tls and tls.client_auth_type in ("RequireAnyClientCert", "RequireClientCert"):
        notes.append(f"client_auth_type {tls.client_auth_type}: client certificates must also verify against "
                     "client_ca_file (or the system CAs), as Python's TLS cannot accept unverified ones")
    if tls and tls.client_auth_type == "RequestClientCert":
        notes.append("client_auth_type RequestClientCert: client certificates are not asked for (they would not be used)")
    if written.http_server_config.http2:
        notes.append("http2 is accepted but this server speaks HTTP/1.1 only")
    if written.tls_server_config.curve_preferences:
        notes.append("curve_preferences is accepted but OpenSSL's default groups are used")
    return WebConfig(path, tls, users, headers, rate.interval, rate.burst, tuple(notes))


def _beside(config_path: str, value: str) -> str:
    """A file named in the web config: relative to the web config's own directory, as exporter-toolkit has it."""
    if not value:
        return ""
    return value if os.path.isabs(value) else os.path.join(os.path.dirname(os.path.abspath(config_path)), value)


def _tls(section: TLSServerSection, config_path: str, source: Source) -> TLSSettings | None:
    where = ("tls_server_config",)
    if not any((section.cert, section.key, section.client_ca, section.cert_file, section.key_file, section.client_ca_file,
                section.client_auth_type)):
        return None
    if not section.cert_file and not section.cert:
        source.fail(where, "missing one of cert or cert_file")
    if not section.key_file and not section.key:
        source.fail(where, "missing one of key or key_file")
    auth = section.client_auth_type or "NoClientCert"
    if auth not in CLIENT_AUTH_TYPES:
        source.fail((*where, "client_auth_type"), f"invalid value (one of {', '.join(CLIENT_AUTH_TYPES)})")
    if (section.client_ca_file or section.client_ca) and auth == "NoClientCert":
        source.fail(where, "client CA's have been configured without a Client Auth Policy")
    sans = tuple(section.client_allowed_sans)
    if sans and auth not in ("RequireAnyClientCert", "RequireClientCert", "RequireAndVerifyClientCert"):
        source.fail((*where, "client_allowed_sans"),
                    "requires client_auth_type to be one of RequireAnyClientCert or RequireAndVerifyClientCert")
    min_version = _tls_version(section.min_version or "TLS12", (*where, "min_version"), source)
    max_version = _tls_version(section.max_version or "TLS13", (*where, "max_version"), source)
    if TLS_VERSIONS.index(min_version) > TLS_VERSIONS.index(max_version):
        source.fail((*where, "min_version"), f"{min_version} is above max_version {max_version}")
    ciphers: list[str] = []
    for index, name in enumerate(section.cipher_suites):
        if name not in CIPHER_SUITES:
            source.fail((*where, "cipher_suites", index), "unknown cipher (the names of Go's tls.CipherSuites(), such as "
                                                          "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)")
        suite = CIPHER_SUITES[name]
        if suite:
            ciphers.append(suite)
    for index, name in enumerate(section.curve_preferences):
        if name not in CURVES:
            source.fail((*where, "curve_preferences", index), f"unknown curve (one of {', '.join(CURVES)})")
    return TLSSettings(
        cert_file=_beside(config_path, section.cert_file), key_file=_beside(config_path, section.key_file),
        cert=section.cert, key=section.key,
        client_ca_file=_beside(config_path, section.client_ca_file), client_ca=section.client_ca,
        client_auth_type=auth, client_allowed_sans=sans, min_version=min_version, max_version=max_version,
        ciphers=tuple(ciphers), prefer_server_cipher_suites=section.prefer_server_cipher_suites,
    )


def _tls_version(version: str, path: tuple, source: Source) -> str:
    if version not in TLS_VERSIONS:
        source.fail(path, f"unknown TLS version (one of {', '.join(TLS_VERSIONS)})")
    return version


def _users(users: dict[str, str], source: Source) -> dict[str, str]:
    """Every user's password is a bcrypt hash that bcrypt can read. The messages name the user by the key only
    (where a name that looks like a hash is masked)."""
    for name, hashed in users.items():
        path = ("basic_auth_users", name)
        if not _BCRYPT_HASH.fullmatch(hashed):
            if _BCRYPT_HASH.fullmatch(hashed.strip()):  # the user could never log in
                source.fail(path, "the bcrypt hash has a line break or spaces around it (a YAML | block ends with a "
                                  "line break: use |- or write the hash on the user's line)")
            hint = " (the user name looks like one: write `name: hash`)" if shown_key(name) != name else ""
            source.fail(path, f"the password is not a bcrypt hash{hint}")
        cost = int(hashed.split("$")[2])
        if not MIN_BCRYPT_COST <= cost <= MAX_BCRYPT_COST:  # no bcrypt reads it: the user could never log in
            source.fail(path, f"the hash has cost {cost}; bcrypt accepts {MIN_BCRYPT_COST} to {MAX_BCRYPT_COST}")
    return dict(users)


def _headers(headers: dict[str, str], source: Source) -> dict[str, str]:
    for name, value in headers.items():
        path = ("http_server_config", "headers", name)
        if name not in EXTRA_HEADERS:
            source.fail(path, f'HTTP header "{shown_key(name)}" can not be configured')
        allowed = EXTRA_HEADERS[name]
        if allowed and value not in allowed:
            source.fail(path, f"invalid value for {name}. Expected one of: {list(allowed)}")
        if any(c in value for c in "\r\n\0"):
            source.fail(path, "control characters in the value")
    return {name: value for name, value in headers.items() if value}
