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

from collections.abc import Iterable
from dataclasses import dataclass

from sollol_exporter.addresses import Address, parse_address
from sollol_exporter.config import Config, RpcBackendConfig, coordinator_label
from sollol_exporter.peers import RPC_SERVER_PORT
from sollol_exporter.probes import BUSY, DNS_ERROR, ERROR, NOT_SERVING, OK, REFUSED, SERVING, TIMEOUT, UNREACHABLE, ProbeKind, ProbeResult, Target

REACHABLE = "reachable"
WORKER_STATES = (REACHABLE, BUSY, SERVING, NOT_SERVING, REFUSED, UNREACHABLE, DNS_ERROR, ERROR)
WORKER_UP_STATES = (REACHABLE, BUSY, SERVING)
DEFAULT_AGENT_PORT = 50051
# Probes whose timeout means busy while a coordinator the worker serves is up (its accept queue is full)
CONNECT_PROBES = (ProbeKind.TCP, ProbeKind.GGML)


@dataclass(frozen=True)
class Worker:
    """A worker to probe: how, where it was named, which coordinators it serves. Shared by the scrapes until the
    set of workers changes, hence frozen."""

    target: Target
    probe: str = ProbeKind.TCP  # as the config names it: one of ProbeKind
    sources: frozenset[str] = frozenset()
    coordinators: frozenset[str] = frozenset()


def address_order(item: tuple[Address, object]) -> tuple[str, int]:
    """Sort key for (address, value) pairs: the order of Address itself, without its slow generated comparisons."""
    return item[0].host, item[0].port


def workers(config: Config, coordinator_names: list[str], from_metadata: Iterable[Address],
            registry_keys: Iterable[str]) -> tuple[dict[Address, Worker], int]:
    """Every worker to probe, in address order, and how many registration keys did not name one."""
    rpc = config.rpc_backends
    found: dict[Address, tuple[set[str], set[str]]] = {}  # address -> (sources, coordinators)

    def add(address: Address, source: str, coordinators: Iterable[str]) -> None:
        sources, serves = found.setdefault(address, (set(), set()))
        sources.add(source)
        serves.update(coordinators)

    for coordinator in config.coordinators:
        for entry in coordinator.rpc_backends:
            add(parse_address(entry, RPC_SERVER_PORT), "config", [coordinator_label(coordinator)])
    static: dict[Address, RpcBackendConfig] = {}
    for backend in rpc.static:
        address = parse_address(backend.address, RPC_SERVER_PORT)
        add(address, "config", coordinator_names)
        static[address] = backend
    invalid = 0
    if rpc.discover:
        for address in from_metadata:
            add(address, "metadata", coordinator_names)
        for key in registry_keys:
            try:
                add(parse_address(key, RPC_SERVER_PORT), "registry", coordinator_names)
            except ValueError:
                invalid += 1
    built: dict[Address, Worker] = {}
    for address, (sources, serves) in sorted(found.items(), key=address_order):
        listed = static.get(address)
        probe = listed.probe if listed is not None and listed.probe else rpc.probe
        target = Target(address)
        if probe == ProbeKind.GRPC:  # ggml workers fall back to tcp between handshakes
            grpc = listed.grpc if listed is not None and (listed.grpc.port or listed.grpc.service) else rpc.grpc
            port = grpc.port or rpc.grpc.port or DEFAULT_AGENT_PORT
            service = grpc.service or rpc.grpc.service or f"rpc-server:{address.port}"
            target = Target(address, Address(address.host, port), service)
        built[address] = Worker(target, probe, frozenset(sources), frozenset(serves))
    return built, invalid


def classify(result: ProbeResult, probe: str, coordinator_up: bool) -> str:
    if result.outcome == OK:
        return REACHABLE
    if result.outcome == BUSY:  # the ggml handshake connected but HELLO got no reply: someone holds the worker
        return BUSY
    if result.outcome == TIMEOUT:
        return BUSY if probe in CONNECT_PROBES and coordinator_up else UNREACHABLE
    if result.outcome in WORKER_STATES:
        return result.outcome
    return ERROR
