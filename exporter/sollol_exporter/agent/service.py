"""The node agent: a gRPC health service (grpc.health.v1) for the rpc-server workers on this host.

Service `rpc-server:<port>` is SERVING while an rpc-server (`rpc-server` or `ggml-rpc-server`) listens on that
port, NOT_SERVING otherwise; service "" is SERVING only while all of them are. The agent never connects to a
worker: it reads this host's socket table, so it answers the same for an idle worker and for one that its
coordinator holds.

With `--web.config.file`, its tls_server_config secures the gRPC port (certificates re-read on each handshake
once their files change; clients must present a certificate when client_auth_type requires one).
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sollol_exporter.agent.processes import rpc_server_listening
from sollol_exporter.logs import debug_traceback, fields
from sollol_exporter.web.config import WebConfigError
from sollol_exporter.web.tls import certificate_and_key, client_ca
from sollol_exporter.web.watch import Loaded, WebConfigWatcher

log = logging.getLogger(__name__)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DEFAULT_LISTEN = ":50051"
STOP_SECONDS = 5.0


def service_name(port: int) -> str:
    return f"rpc-server:{port}"


def _certificate_configuration(loaded: Loaded, path: str):
    tls = loaded.config.tls
    assert tls is not None  # only a web configuration with TLS gets here
    cert, key = certificate_and_key(tls, path)
    ca = client_ca(tls, path) if tls.wants_client_cert else None
    return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)


def server_credentials(web: WebConfigWatcher) -> grpc.ServerCredentials | None:
    """gRPC credentials from the web config's tls_server_config, None without one. gRPC asks for the current
    certificates at each handshake; they change when the watcher has loaded a new valid file."""
    tls = web.loaded.config.tls
    if tls is None:
        return None
    if web.loaded.config.users:
        log.info("basic_auth_users do not apply to the gRPC agent; use client certificates", extra=fields(file=web.path))
    if tls.min_version != "TLS12" or tls.max_version != "TLS13" or tls.ciphers or tls.client_allowed_sans:
        log.info("the gRPC agent applies only the certificates and client_auth_type of tls_server_config", extra=fields(file=web.path))
    served = [web.loaded]

    def fetch():
        loaded = web.current()
        if loaded is served[0] or loaded.config.tls is None:
            return None
        try:
            configuration = _certificate_configuration(loaded, web.path)
        except WebConfigError as err:
            log.error("web config reload failed, keeping the previous one", extra=fields(error=str(err)))
            return None
        served[0] = loaded
        return configuration

    return grpc.dynamic_ssl_server_credentials(_certificate_configuration(web.loaded, web.path), fetch,
                                               require_client_authentication=tls.requires_client_cert)


class Agent:
    def __init__(self, ports: list[int], listen: str, interval: float, check=rpc_server_listening,
                 web: WebConfigWatcher | None = None):
        self.ports = ports
        self.interval = interval
        self.check = check
        self.servicer = health.HealthServicer()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, self.server)
        host, _, port = listen.rpartition(":")
        credentials = server_credentials(web) if web is not None else None
        self.tls = credentials is not None
        address = f"{host or '[::]'}:{port}"
        self.port = self.server.add_secure_port(address, credentials) if credentials else self.server.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot listen on {listen}")
        self._stop = threading.Event()
        self._states: dict[int, bool] = {}
        self._overall: bool | None = None
        self.update()

    def update(self) -> None:
        # The reference servicer sends every set() to every Watch stream: set only on change, so that Watch
        # clients see changes, not a heartbeat.
        for port in self.ports:
            up, why = self.check(port)
            if self._states.get(port) != up:
                log.info("worker state", extra=fields(port=port, serving=up, reason=why))
                self._states[port] = up
                self.servicer.set(service_name(port), SERVING if up else NOT_SERVING)
        overall = all(self._states.values())
        if self._overall != overall:
            self._overall = overall
            self.servicer.set("", SERVING if overall else NOT_SERVING)

    def start(self) -> None:
        self.server.start()
        threading.Thread(target=self._loop, name="agent-check", daemon=True).start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.update()
            except Exception:  # one bad read of /proc must not end the checks
                log.error("check failed", exc_info=debug_traceback(log))

    def stop(self) -> None:
        self._stop.set()
        self.servicer.enter_graceful_shutdown()
        # Streams still open after the grace period are cancelled; the wait is bounded all the same, so that a
        # stop asked by SIGTERM ends whatever gRPC's own threads do.
        self.server.stop(grace=1).wait(STOP_SECONDS)
