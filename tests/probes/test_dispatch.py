"""The dispatch table against what the config accepts."""

from __future__ import annotations

from typing import get_args, get_type_hints

from sollol_exporter.config import RpcBackendConfig, RpcBackendsConfig
from sollol_exporter.probes import ProbeKind
from sollol_exporter.probes.dispatch import PROBERS

INHERITED = ""  # a static worker without a probe of its own takes rpc_backends.probe


def accepted_probes(config_class: type) -> set[str]:
    return set(get_args(get_type_hints(config_class)["probe"]))


def test_every_probe_the_config_accepts_has_a_prober_and_every_prober_is_accepted():
    accepted = (accepted_probes(RpcBackendConfig) | accepted_probes(RpcBackendsConfig)) - {INHERITED}
    assert accepted == set(ProbeKind) == set(PROBERS)  # the config's strings against the table's keys: equal as strings

