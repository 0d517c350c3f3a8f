"""rpc-server workers: where they come from, and the state rule that turns a probe result into a state.

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

from sollol_exporter.config import Config, coordinator_label
from sollol_exporter.labels import Address, parse_address
from sollol_exporter.probes import BUSY, DNS_ERROR, ERROR, NOT_SERVING, OK, REFUSED, SERVING, TIMEOUT, UNREACHABLE, ProbeResult, Target

REACHABLE = "reachable"
STATES = (REACHABLE, BUSY, SERVING, NOT_SERVING, REFUSED, UNREACHABLE, DNS_ERROR, ERROR)
UP_STATES = (REACHABLE, BUSY, SERVING)
DEFAULT_AGENT_PORT = 50051


@dataclass
class Worker:
    """A worker to probe: how, where it was named, which coordinators it serves."""

    target: Target
    probe: str = "tcp"
    sources: set[str] = field(default_factory=set)
    coordinators: set[str] = field(default_factory=set)


def workers(config: Config, coordinator_names: list[str], from_metadata: Iterable[Address],
            registry_keys: Iterable[str]) -> tuple[dict[Address, Worker], int]:
    """Every worker to probe, and how many registration keys did not name one."""
    rpc = config.rpc_backends
    found: dict[Address, Worker] = {}

    def add(address: Address, source: str, coordinators: Iterable[str]) -> None:
        worker = found.setdefault(address, Worker(Target(address), probe=rpc.probe))
        worker.sources.add(source)
        worker.coordinators.update(coordinators)

    for coordinator in config.coordinators:
        for entry in coordinator.rpc_backends:
            add(parse_address(entry, 50052), "config", [coordinator_label(coordinator)])
    static = {}
    for entry in rpc.static:
        address = parse_address(entry.address, 50052)
        add(address, "config", coordinator_names)
        static[address] = entry
    invalid = 0
    if rpc.discover:
        for address in from_metadata:
            add(address, "metadata", coordinator_names)
        for key in registry_keys:
            try:
                add(parse_address(key, 50052), "registry", coordinator_names)
            except ValueError:
                invalid += 1
    for address, worker in found.items():
        entry = static.get(address)
        if entry is not None and entry.probe:
            worker.probe = entry.probe
        if worker.probe == "grpc":  # ggml workers fall back to tcp between handshakes
            grpc = entry.grpc if entry is not None and (entry.grpc.port or entry.grpc.service) else rpc.grpc
            port = grpc.port or rpc.grpc.port or DEFAULT_AGENT_PORT
            service = grpc.service or rpc.grpc.service or f"rpc-server:{address.port}"
            worker.target = Target(address, Address(address.host, port), service)
    return found, invalid


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
