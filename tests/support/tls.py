"""Certificates made at test time (trustme), bcrypt hashes, and the exporter started behind a web config.

Nothing is read from or written to the machine's trust store: every client is given the test CA explicitly.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import requests
import trustme
import yaml

from tests.support.net import free_port, stop_process, wait_for

LOOP = "127.0.0.1"


@dataclass
class Pair:
    cert: Path
    key: Path

    @property
    def requests_cert(self) -> tuple[str, str]:
        return str(self.cert), str(self.key)


@dataclass
class Certificates:
    ca: Path  # signs the server and the trusted client
    server: Pair
    client: Pair
    stranger: Pair  # a client certificate from another CA
    other_ca: Path


def make_certificates(directory: Path) -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    client = ca.issue_cert("prometheus@example.test", common_name="prometheus")
    stranger = other.issue_cert("prometheus@example.test", common_name="prometheus")

    def pair(name, issued) -> Pair:
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        return Pair(cert, key)

    ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    other.cert_pem.write_to_path(str(directory / "other-ca.crt"))
    return Certificates(directory / "ca.crt", pair("server", server), pair("client", client), pair("stranger", stranger),
                        directory / "other-ca.crt")


def handshake(server: ssl.SSLContext, ca: Path, client: Pair | None = None) -> tuple[bytes, dict | None]:
    """A TLS handshake in memory between `server` and a client that trusts `ca` (presenting `client` if given):
    (the server certificate the client received, DER; the client certificate the server accepted, or None).
    Raises ssl.SSLError when either side refuses the other."""
    client_context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        client_context.load_cert_chain(*client.requests_cert)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_end = client_context.wrap_bio(to_client, to_server, server_hostname="localhost")
    server_end = server.wrap_bio(to_server, to_client, server_side=True)
    pending = [client_end, server_end]
    for _ in range(10):  # TLS 1.2 and 1.3 both finish within a few flights
        for end in list(pending):
            try:
                end.do_handshake()
                pending.remove(end)
            except ssl.SSLWantReadError:
                pass
        if not pending:
            return client_end.getpeercert(binary_form=True), server_end.getpeercert() or None
    raise AssertionError("the TLS handshake did not finish")


def bcrypt_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()  # cost 4: fast tests, same code path


def tls_section(certs: Certificates, **extra) -> dict:
    return {"cert_file": str(certs.server.cert), "key_file": str(certs.server.key), **extra}


class SecuredExporter:
    """The exporter subprocess with `--web.config.file`; stopped by PID."""

    def __init__(self, config: dict, web_config: dict | str, workdir: Path, extra_args=(), scheme: str = "https"):
        self.port = free_port()
        self.workdir = Path(workdir)
        self.config_path = self.workdir / f"exporter-{self.port}.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.web_config_path = self.workdir / f"web-{self.port}.yml"
        self.write_web_config(web_config)
        self.log_path = self.workdir / f"exporter-{self.port}.log"
        self.log = open(self.log_path, "wb")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SOLLOL_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sollol_exporter", "--config.file", str(self.config_path),
             "--web.listen-address", f"{LOOP}:{self.port}", "--web.config.file", str(self.web_config_path), *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, env=environment,
        )
        self.url = f"{scheme}://{LOOP}:{self.port}"
        wait_for(self._listening, 20, what="exporter start")

    def write_web_config(self, web_config: dict | str) -> None:
        text = web_config if isinstance(web_config, str) else yaml.safe_dump(web_config)
        # Written beside and renamed, so a reload never sees half a file.
        temporary = self.web_config_path.with_suffix(".tmp")
        temporary.write_text(text)
        temporary.replace(self.web_config_path)

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"exporter exited: {self.read_log()}")
        try:
            with socket.create_connection((LOOP, self.port), timeout=1):
                return True
        except OSError:
            return False

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return requests.get(self.url + path, **kwargs)

    def read_log(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()
