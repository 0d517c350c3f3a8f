"""rpc-server workers: where they come from, the probe result, and the state rule.

State rule (TCP connect-and-close, the default):
  connected                                                  -> reachable
  connection refused                                         -> refused      (no process on the port)
  connect timed out, and a coordinator this worker serves is up -> busy     (its accept queue is full while
                                                                             the coordinator holds it)
  connect timed out otherwise, or host/network unreachable   -> unreachable
  name did not resolve                                       -> dns_error
With the gRPC probe (node agent): SERVING -> serving, other statuses or unknown service -> not_serving,
refused / unreachable / dns_error as above, any other gRPC error -> error. A gRPC timeout is unreachable.
With the ggml handshake: answered -> reachable, connected but HELLO unanswered -> busy (then TCP only for
handshake_backoff), a broken reply -> error. Between handshakes a ggml worker is probed like a TCP one.
up = 1 for reachable, busy and serving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from prometheus_client.core import GaugeMetricFamily

from sollol_exporter.config import Config, coordinator_label
from sollol_exporter.labels import Address, parse_address
from sollol_exporter.probes import DNS_ERROR, ERROR, NOT_SERVING, OK, REFUSED, SERVING, TIMEOUT, UNREACHABLE, ProbeResult
from sollol_exporter.probes.ggml_rpc import incompatible, protocol_for_build

REACHABLE, BUSY = "reachable", "busy"
STATES = (REACHABLE, BUSY, SERVING, NOT_SERVING, REFUSED, UNREACHABLE, DNS_ERROR, ERROR)
UP_STATES = (REACHABLE, BUSY, SERVING)
DEFAULT_AGENT_PORT = 50051


@dataclass
class BackendTarget:
    sources: set[str] = field(default_factory=set)
    coordinators: set[str] = field(default_factory=set)
    probe: str = "tcp"
    grpc_address: Address | None = None
    grpc_service: str = ""
    state: str = ""


def backend_targets(config: Config, coordinator_names: list[str], from_metadata: Iterable[Address],
                    registry_keys: Iterable[str], g) -> dict[Address, BackendTarget]:
    """Every worker to probe, with where it was named and which coordinators it serves."""
    rpc = config.rpc_backends
    targets: dict[Address, BackendTarget] = {}

    def add(address: Address, source: str, coordinators: Iterable[str]) -> BackendTarget:
        target = targets.setdefault(address, BackendTarget(probe=rpc.probe))
        target.sources.add(source)
        target.coordinators.update(coordinators)
        return target

    for coordinator in config.coordinators:
        for entry in coordinator.rpc_backends:
            add(parse_address(entry, 50052), "config", [coordinator_label(coordinator)])
    static = {}
    for entry in rpc.static:
        address = parse_address(entry.address, 50052)
        add(address, "config", coordinator_names)
        static[address] = entry
    if rpc.discover:
        for address in from_metadata:
            add(address, "metadata", coordinator_names)
        invalid = 0
        for key in registry_keys:
            try:
                add(parse_address(key, 50052), "registry", coordinator_names)
            except ValueError:
                invalid += 1
        g.count_invalid("rpc_backends", invalid)
    for address, target in targets.items():
        entry = static.get(address)
        if entry is not None and entry.probe:
            target.probe = entry.probe
        if target.probe == "grpc":  # ggml targets fall back to tcp between handshakes
            grpc = entry.grpc if entry is not None and (entry.grpc.port or entry.grpc.service) else rpc.grpc
            port = grpc.port or rpc.grpc.port or DEFAULT_AGENT_PORT
            target.grpc_address = Address(address.host, port)
            target.grpc_service = grpc.service or rpc.grpc.service or f"rpc-server:{address.port}"
    return targets


def classify(result: ProbeResult, probe: str, coordinator_up: bool) -> str:
    if result.outcome == OK:
        return REACHABLE
    if result.outcome == BUSY:  # the ggml handshake connected but HELLO got no reply: someone holds the worker
        return BUSY
    if result.outcome == TIMEOUT:
        return BUSY if probe in ("tcp", "ggml") and coordinator_up else UNREACHABLE
    if result.outcome in STATES:
        return result.outcome
    return ERROR


class RpcBackendsCollector:
    name = "rpc_backends"

    def collect(self, g):
        up = GaugeMetricFamily("sollol_rpc_backend_up", "1 if the worker is reachable, busy serving its coordinator, or SERVING.", labels=["backend"])
        state = GaugeMetricFamily(
            "sollol_rpc_backend_state",
            "One-hot worker state (reachable, busy, serving, not_serving, refused, unreachable, dns_error, error); see the README for the rule.",
            labels=["backend", "state"],
        )
        duration = GaugeMetricFamily("sollol_rpc_backend_probe_duration_seconds", "Time the worker probe took.", labels=["backend"])
        info = GaugeMetricFamily(
            "sollol_rpc_backend_info", "How the worker is probed (tcp or grpc) and where it was found (config, metadata, registry); always 1.",
            labels=["backend", "probe", "source"],
        )
        serves = GaugeMetricFamily(
            "sollol_rpc_backend_coordinator_info",
            "The coordinators each worker serves (from coordinators[].rpc_backends, else every configured one); always 1.",
            labels=["backend", "coordinator"],
        )
        coordinators_up = {name for name, reading in g.coordinators.items() if reading.state in ("ok", "loading", "stalled")}
        for address, target in sorted(g.rpc_targets.items()):
            result = g.rpc_results[address]
            current = classify(result, target.probe, bool(target.coordinators & coordinators_up))
            backend = str(address)
            up.add_metric([backend], 1.0 if current in UP_STATES else 0.0)
            for each in STATES:
                state.add_metric([backend, each], 1.0 if each == current else 0.0)
            duration.add_metric([backend], result.duration)
            info.add_metric([backend, target.probe, ",".join(sorted(target.sources))], 1.0)
            for coordinator in sorted(target.coordinators):
                serves.add_metric([backend, coordinator], 1.0)
            target.state = current
        return [up, state, duration, info, serves, *self._handshakes(g)]

    def _handshakes(self, g):
        protocol = GaugeMetricFamily("sollol_rpc_backend_protocol_info", "RPC protocol version the worker reported in its last handshake; always 1.", labels=["backend", "version"])
        devices = GaugeMetricFamily("sollol_rpc_backend_devices", "Devices the worker reported in its last handshake.", labels=["backend"])
        free = GaugeMetricFamily("sollol_rpc_backend_device_memory_free_bytes", "Free memory per worker device (live since b6790; CPU devices report RAM).", labels=["backend", "device"])
        total = GaugeMetricFamily("sollol_rpc_backend_device_memory_total_bytes", "Total memory per worker device.", labels=["backend", "device"])
        when = GaugeMetricFamily("sollol_rpc_backend_handshake_timestamp_seconds", "When the worker last answered a handshake.", labels=["backend"])
        skew = GaugeMetricFamily(
            "sollol_rpc_backend_version_skew",
            "1 if the coordinator's build speaks an RPC protocol that refuses this worker (other major, or older minor).",
            labels=["backend", "coordinator"],
        )
        for address, (handshake, seen) in sorted(g.handshakes.items()):
            backend = str(address)
            protocol.add_metric([backend, handshake.version], 1.0)
            devices.add_metric([backend], float(len(handshake.devices)))
            for index, (device_free, device_total) in enumerate(handshake.devices):
                free.add_metric([backend, str(index)], float(device_free))
                total.add_metric([backend, str(index)], float(device_total))
            when.add_metric([backend], seen)
            worker = _version(handshake.version)
            for name in sorted(g.rpc_targets[address].coordinators):
                reading = g.coordinators.get(name)
                expected = protocol_for_build(reading.build) if reading is not None and reading.build else None
                if worker and expected:
                    skew.add_metric([backend, name], 1.0 if incompatible(expected, worker) else 0.0)
        return [protocol, devices, free, total, when, skew]


def _version(text: str) -> tuple[int, int, int] | None:
    parts = text.split(".")
    return tuple(int(p) for p in parts) if len(parts) == 3 and all(p.isdigit() for p in parts) else None
