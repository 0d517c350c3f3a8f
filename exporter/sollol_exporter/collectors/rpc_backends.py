"""rpc-server workers: state (worked out where they are probed, see workers.py), probe time, handshakes."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.samples import Sample

from sollol_exporter.collectors.names import CollectorName
from sollol_exporter.presence import COORDINATOR
from sollol_exporter.probes import Target
from sollol_exporter.probes.ggml_rpc import incompatible, protocol_for_build
from sollol_exporter.snapshot import is_expected
from sollol_exporter.workers import WORKER_STATES, WORKER_UP_STATES, address_order


@dataclass(frozen=True)
class _Rows:
    """A worker's series that change only with its state, probe, sources or coordinators (all but the probe
    duration): built when one of those changes, else taken from the previous scrape. With a thousand workers
    this is most of the exporter's samples."""

    key: tuple
    labels: dict[str, str]
    up: Sample
    states: tuple[Sample, ...]
    info: Sample
    serves: tuple[Sample, ...]


class RpcBackendsCollector:
    name = CollectorName.RPC_BACKENDS

    def __init__(self) -> None:
        self._kept: dict[Target, _Rows] = {}  # the last scrape's rows, replaced whole (scrapes may run at once)

    def collect(self, s):
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
            "The coordinators each worker serves (from coordinators[].rpc_backends, else every configured one that is not absent); always 1.",
            labels=["backend", "coordinator"],
        )
        expected = {name: is_expected(s, COORDINATOR, name) for name in {c for b in s.backends.values() for c in b.coordinators}}
        previous, kept = self._kept, {}
        up_add, states_add, duration_add = up.samples.append, state.samples.extend, duration.samples.append
        info_add, serves_add = info.samples.append, serves.samples.extend
        for address, backend in sorted(s.backends.items(), key=address_order):
            serving = tuple(c for c in sorted(backend.coordinators) if expected[c])  # an absent coordinator serves nobody
            key = (backend.state, backend.probe, backend.sources, serving)
            rows = previous.get(backend.target)
            if rows is None or rows.key != key:
                rows = _rows(str(address), key)
            kept[backend.target] = rows
            up_add(rows.up)
            states_add(rows.states)
            duration_add(Sample(duration.name, rows.labels, backend.result.duration))
            info_add(rows.info)
            serves_add(rows.serves)
        self._kept = kept
        return [up, state, duration, info, serves, *self._handshakes(s)]

    def _handshakes(self, s):
        protocol = GaugeMetricFamily("sollol_rpc_backend_protocol_info", "RPC protocol version the worker reported in its last handshake; always 1.",
                                     labels=["backend", "version"])
        devices = GaugeMetricFamily("sollol_rpc_backend_devices", "Devices the worker reported in its last handshake.", labels=["backend"])
        free = GaugeMetricFamily("sollol_rpc_backend_device_memory_free_bytes", "Free memory per worker device (live since b6790; CPU devices report RAM).",
                                 labels=["backend", "device"])
        total = GaugeMetricFamily("sollol_rpc_backend_device_memory_total_bytes", "Total memory per worker device.", labels=["backend", "device"])
        when = GaugeMetricFamily("sollol_rpc_backend_handshake_timestamp_seconds", "When the worker last answered a handshake.", labels=["backend"])
        skew = GaugeMetricFamily(
            "sollol_rpc_backend_version_skew",
            "1 if the coordinator's build speaks an RPC protocol that refuses this worker (other major, or older minor).",
            labels=["backend", "coordinator"],
        )
        for address, (handshake, seen) in sorted(s.handshakes.items()):
            if address not in s.backends:
                continue
            backend = str(address)
            protocol.add_metric([backend, handshake.version], 1.0)
            devices.add_metric([backend], float(len(handshake.devices)))
            for index, (device_free, device_total) in enumerate(handshake.devices):
                free.add_metric([backend, str(index)], float(device_free))
                total.add_metric([backend, str(index)], float(device_total))
            when.add_metric([backend], seen)
            worker = _version(handshake.version)
            for name in sorted(s.backends[address].coordinators):
                reading = s.coordinators.get(name)
                expected = protocol_for_build(reading.build) if reading is not None and reading.build else None
                if worker and expected:
                    skew.add_metric([backend, name], 1.0 if incompatible(expected, worker) else 0.0)
        return [protocol, devices, free, total, when, skew]


def _rows(backend: str, key: tuple) -> _Rows:
    current, probe, sources, serving = key
    labels = {"backend": backend}
    return _Rows(
        key, labels,
        Sample("sollol_rpc_backend_up", labels, 1.0 if current in WORKER_UP_STATES else 0.0),
        tuple(Sample("sollol_rpc_backend_state", {"backend": backend, "state": each}, 1.0 if each == current else 0.0) for each in WORKER_STATES),
        Sample("sollol_rpc_backend_info", {"backend": backend, "probe": probe, "source": ",".join(sorted(sources))}, 1.0),
        tuple(Sample("sollol_rpc_backend_coordinator_info", {"backend": backend, "coordinator": c}, 1.0) for c in serving),
    )


def _version(text: str) -> tuple[int, int, int] | None:
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch
