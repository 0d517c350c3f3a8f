"""rpc-server workers: state (worked out where they are probed, see workers.py), probe time, handshakes."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from sollol_exporter.presence import COORDINATOR
from sollol_exporter.probes.ggml_rpc import incompatible, protocol_for_build
from sollol_exporter.snapshot import is_expected
from sollol_exporter.workers import STATES, UP_STATES


class RpcBackendsCollector:
    name = "rpc_backends"

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
        for address, backend in sorted(s.backends.items()):
            name = str(address)
            up.add_metric([name], 1.0 if backend.state in UP_STATES else 0.0)
            for each in STATES:
                state.add_metric([name, each], 1.0 if each == backend.state else 0.0)
            duration.add_metric([name], backend.result.duration)
            info.add_metric([name, backend.probe, ",".join(sorted(backend.sources))], 1.0)
            for coordinator in sorted(backend.coordinators):
                if is_expected(s, COORDINATOR, coordinator):  # an absent coordinator serves nobody
                    serves.add_metric([name, coordinator], 1.0)
        return [up, state, duration, info, serves, *self._handshakes(s)]

    def _handshakes(self, s):
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


def _version(text: str) -> tuple[int, int, int] | None:
    parts = text.split(".")
    return tuple(int(p) for p in parts) if len(parts) == 3 and all(p.isdigit() for p in parts) else None
