"""One table from probe kind to prober, as in blackbox_exporter."""

from __future__ import annotations

from collections.abc import Callable

from sollol_exporter.probes import ProbeKind, ggml_rpc, grpc_health, tcp

PROBERS: dict[ProbeKind, Callable] = {
    ProbeKind.TCP: tcp.probe_all,
    ProbeKind.GRPC: grpc_health.probe_all,
    ProbeKind.GGML: ggml_rpc.probe_all,
}
