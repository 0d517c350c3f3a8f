"""TLS from a web config's tls_server_config: an ssl.SSLContext for the HTTP server, credentials for gRPC."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import ssl
import tempfile

from sollol_exporter import files
from sollol_exporter.web.config import TLSSettings, WebConfigError

SHM = "/dev/shm"  # where inline PEM goes when memfd is not available, before the temporary directory

_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
             "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


def _read(path: str, what: str, config_path: str) -> bytes:
    try:
        return files.read_bytes(path, files.MAX_FILE_BYTES)
    except OSError as err:
        raise WebConfigError(f"{config_path}: tls_server_config: failed to read {what} ({path}): {files.reason(err)}") from None


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
    cert, key = certificate_and_key(tls, config_path)  # checks the files: regular, readable, not huge
    _load_pair(context, tls, cert, key, config_path)
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


def _load_pair(context: ssl.SSLContext, tls: TLSSettings, cert: bytes, key: bytes, config_path: str) -> None:
    # load_cert_chain reads files only, and blocking: it is given the bytes already read and checked, in memory
    # (memfd), so that a file replaced since (by a FIFO, say) cannot block it. Without memfd, cert_file and key_file
    # are given as they are, and inline PEM is staged in /dev/shm or the temporary directory and removed at once.
    with contextlib.ExitStack() as staged:
        try:
            cert_path = staged.enter_context(_loadable("cert", cert, tls.cert_file))
            key_path = staged.enter_context(_loadable("key", key, tls.key_file))
        except OSError as err:
            raise WebConfigError(f"{config_path}: tls_server_config: cannot stage the inline cert and key for loading "
                                 f"(no memfd, and neither {SHM} nor {tempfile.gettempdir()} is writable): "
                                 f"{err.strerror or err}; use cert_file and key_file, or mount a writable /tmp") from None
        try:
            context.load_cert_chain(cert_path, key_path, password=lambda: b"")
        except (ssl.SSLError, ValueError) as err:
            reason = getattr(err, "reason", None) or "certificate and key do not form a usable pair"
            raise WebConfigError(f"{config_path}: tls_server_config: failed to load the certificate and key: {reason}") from None
        except OSError as err:  # a file replaced or removed since it was read
            raise WebConfigError(f"{config_path}: tls_server_config: failed to load the certificate and key: {err.strerror or err}") from None


@contextlib.contextmanager
def _loadable(name: str, data: bytes, path: str):
    """A path holding `data` (read from `path`, or inline when `path` is empty), readable by this process only;
    anything staged is gone when the block ends."""
    fd = None
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        try:
            fd = os.memfd_create(f"sollol-tls-{name}", os.MFD_CLOEXEC)
        except OSError:
            fd = None
    if fd is not None:
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    if path:
        yield path
        return
    directory = SHM if os.path.isdir(SHM) and os.access(SHM, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="sollol-tls-", dir=directory) as staging:
        path = os.path.join(staging, f"{name}.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        yield path


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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
