"""TLS from a web config's tls_server_config: an ssl.SSLContext for the HTTP server, credentials for gRPC."""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile

from sollol_exporter.web.config import TLSSettings, WebConfigError

_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
             "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


def _read(path: str, what: str, config_path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise WebConfigError(f"{config_path}: tls_server_config: failed to read {what} ({path}): {err.strerror or err}") from None


def certificate_and_key(tls: TLSSettings, config_path: str) -> tuple[bytes, bytes]:
    cert = _read(tls.cert_file, "cert_file", config_path) if tls.cert_file else tls.cert.encode()
    key = _read(tls.key_file, "key_file", config_path) if tls.key_file else tls.key.encode()
    return cert, key


def client_ca(tls: TLSSettings, config_path: str) -> bytes | None:
    if tls.client_ca_file:
        return _read(tls.client_ca_file, "client_ca_file", config_path)
    return tls.client_ca.encode() if tls.client_ca else None


def server_context(tls: TLSSettings, config_path: str) -> ssl.SSLContext:
    """A server context for these settings; raises WebConfigError with the file name (never key material)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.minimum_version = _VERSIONS[tls.min_version]
        context.maximum_version = _VERSIONS[tls.max_version]
    except (ValueError, ssl.SSLError) as err:
        raise WebConfigError(f"{config_path}: tls_server_config: TLS version not available here: {err}") from None
    if tls.ciphers:
        try:
            context.set_ciphers(":".join(tls.ciphers))
        except ssl.SSLError:
            raise WebConfigError(f"{config_path}: tls_server_config.cipher_suites: none of them is available") from None
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    cert, key = certificate_and_key(tls, config_path)
    _load_pair(context, cert, key, config_path)
    if tls.wants_client_cert:
        ca = client_ca(tls, config_path)
        try:
            if ca is None:
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
            else:
                context.load_verify_locations(cadata=ca.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError):
            raise WebConfigError(f"{config_path}: tls_server_config: the client CA holds no usable certificate") from None
        context.verify_mode = ssl.CERT_REQUIRED if tls.requires_client_cert else ssl.CERT_OPTIONAL
    return context


def _load_pair(context: ssl.SSLContext, cert: bytes, key: bytes, config_path: str) -> None:
    # load_cert_chain reads files only: inline PEM goes through a private temporary directory, removed at once.
    with tempfile.TemporaryDirectory(prefix="sollol-tls-") as directory:
        cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        for path, data in ((cert_path, cert), (key_path, key)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
                handle.write(data)
        try:
            context.load_cert_chain(cert_path, key_path, password=lambda: b"")
        except (ssl.SSLError, ValueError) as err:
            reason = getattr(err, "reason", None) or "certificate and key do not form a usable pair"
            raise WebConfigError(f"{config_path}: tls_server_config: failed to load the certificate and key: {reason}") from None


def peer_sans(certificate: dict) -> set[str]:
    """Subject Alternative Names of a verified peer certificate, spelled as exporter-toolkit compares them."""
    names = set()
    for kind, value in certificate.get("subjectAltName", ()):
        if kind == "IP Address":
            try:
                value = str(ipaddress.ip_address(value.strip()))
            except ValueError:
                pass
        names.add(value)
    return names
