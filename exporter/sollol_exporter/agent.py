"""The node agent: a gRPC health service (grpc.health.v1) for the rpc-server workers on this host.

Service `rpc-server:<port>` is SERVING while an rpc-server (`rpc-server` or `ggml-rpc-server`) listens on that
port, NOT_SERVING otherwise; service "" is SERVING only while all of them are. The agent never connects to a
worker: it reads this host's socket table, so it answers the same for an idle worker and for one that its
coordinator holds.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sollol_exporter.logs import fields
from sollol_exporter.sockets import rpc_server_listening

log = logging.getLogger(__name__)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DEFAULT_LISTEN = ":50051"


def service_name(port: int) -> str:
    return f"rpc-server:{port}"


class Agent:
    def __init__(self, ports: list[int], listen: str, interval: float, check=rpc_server_listening):
        self.ports = ports
        self.interval = interval
        self.check = check
        self.servicer = health.HealthServicer()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, self.server)
        host, _, port = listen.rpartition(":")
        self.port = self.server.add_insecure_port(f"{host or '[::]'}:{port}")
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
                log.error("check failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self.servicer.enter_graceful_shutdown()
        self.server.stop(grace=1).wait()
