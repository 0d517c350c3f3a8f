"""Bad config files end in one clear line and exit 2, never a traceback (issue "Hardening", item 6).

Run through the command line, as a user meets them: `--config.check` and a real start must agree. Each case
runs in a child process with a time and memory limit, because before the fix an alias bomb never finished.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port

HOSTILE = Path(__file__).parent.parent / "fixtures" / "config" / "hostile"
MEMORY_LIMIT = 1 << 30


def expected_error(path: Path) -> str:
    return path.read_bytes().split(b"\n", 1)[0].decode("ascii").removeprefix("# error: ")


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_exporter(config_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sollol_exporter", "--config.file", str(config_path), *args],
        capture_output=True, text=True, timeout=20, preexec_fn=_limit_memory,
    )


def assert_one_clear_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    printed = [line for line in result.stderr.splitlines() if line.startswith("sollol-exporter: ")]
    assert len(printed) == 1, result.stderr
    assert f"config.yml{expected}" in printed[0] if expected.startswith(":") else expected in printed[0]


def generated_cases(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    return {
        "utf16": ("redis: {}\n".encode("utf-16"), ":1: the file is UTF-16; save it as UTF-8"),
        "deep_nesting": (b"a: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", ":1: nested deeper than 32 levels"),
        "deep_mappings": (b"".join(b"  " * depth + b"k:\n" for depth in range(100)), ":32: nested deeper than 32 levels"),
        "too_many_nodes": (b"ollama:\n  nodes: [" + b",".join([b"h"] * 60_000) + b"]\n", ":2: more than 50000 YAML nodes"),
        "too_large": (b"# padding\n" * 120_000, "config.yml: larger than 1048576 bytes"),
    }


@pytest.mark.parametrize("path", sorted(HOSTILE.glob("*.yml")), ids=lambda p: p.stem)
def test_config_check_refuses_a_hostile_file_with_file_and_line(path, tmp_path):
    target = tmp_path / "config.yml"
    target.write_bytes(path.read_bytes())
    assert_one_clear_error(run_exporter(target, "--config.check"), expected_error(path))


@pytest.mark.parametrize("case", ["utf16", "deep_nesting", "deep_mappings", "too_many_nodes", "too_large"])
def test_config_check_refuses_a_generated_hostile_file(case, tmp_path):
    content, expected = generated_cases(tmp_path)[case]
    target = tmp_path / "config.yml"
    target.write_bytes(content)
    assert_one_clear_error(run_exporter(target, "--config.check"), expected)


@pytest.mark.parametrize("name", ["redis_password_slash", "alias_bomb", "not_utf8", "redis_unknown_option"])
def test_start_refuses_what_config_check_refuses(name, tmp_path):
    """Start must fail the same way, not later with a traceback (the password with '/' used to pass the check)."""
    source = HOSTILE / f"{name}.yml"
    target = tmp_path / "config.yml"
    target.write_bytes(source.read_bytes())
    result = run_exporter(target, "--web.listen-address", f"127.0.0.1:{free_port()}")
    assert_one_clear_error(result, expected_error(source))


def test_redis_password_with_a_slash_is_never_shown(tmp_path):
    target = tmp_path / "config.yml"
    target.write_bytes((HOSTILE / "redis_password_slash.yml").read_bytes())
    for args in (["--config.check"], ["--web.listen-address", f"127.0.0.1:{free_port()}"]):
        result = run_exporter(target, *args)
        for fragment in ("Pa55", "Word0", "Pa55%2FWord0"):
            assert fragment not in result.stdout + result.stderr


def test_percent_encoded_redis_password_is_accepted(tmp_path):
    target = tmp_path / "config.yml"
    target.write_text("redis:\n  url: redis://:Pa55%2FWord0@127.0.0.1:6379/0\n")
    result = run_exporter(target, "--config.check")
    assert result.returncode == 0, result.stderr
