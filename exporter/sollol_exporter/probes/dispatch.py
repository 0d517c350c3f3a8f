"""One table from probe name to prober, as in blackbox_exporter."""

from __future__ import annotations

from collections.abc import Callable

from sollol_exporter.probes import ggml_rpc, grpc_health, tcp

PROBERS: dict[str, Callable] = {
    "tcp": tcp.probe_all,
    "grpc": grpc_health.probe_all,
    "ggml": ggml_rpc.probe_all,
}
