"""Bad config files end in one clear line and exit 2, never a traceback (issue "Hardening", item 6).

Run through the command line, as a user meets them: `--config.check` and a real start must agree. Each case
runs in a child process with a time and memory limit, because before the fix an alias bomb never finished.

Issue "The scrape core, owned and bounded", row 15 (`--config.check` let through zero timeouts and counts, unknown
tags on lists and mappings, CR/LF in a coordinator URL: the fixtures in hostile/) and row 9: a file the exporter
reads that is not a regular file (a FIFO, a device, a directory) is refused, and never blocks a thread: the
config file at start, at check and at reload, and a coordinator's api_key_file, against a real llama-server.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.exporter import ExporterProcess, one_hot, value
from tests.support.net import free_port, stop_process, wait_for

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


# -- files that are not regular files ---------------------------------------------------------------------------------

def special_file(kind: str, tmp_path: Path) -> Path:
    if kind == "fifo":
        path = tmp_path / "config.yml"
        os.mkfifo(path)
        return path
    if kind == "directory":
        (tmp_path / "config.yml").mkdir()
        return tmp_path / "config.yml"
    return Path({"null device": "/dev/null", "zero device": "/dev/zero"}[kind])


SPECIAL = {"fifo": "a FIFO", "directory": "a directory", "null device": "a character device", "zero device": "a character device"}


@pytest.mark.parametrize("kind", SPECIAL)
def test_a_config_file_that_is_not_a_regular_file_is_refused_at_once(kind, tmp_path):
    """A FIFO blocked --config.check and start-up until something wrote to it; /dev/null passed as an empty file."""
    path = special_file(kind, tmp_path)
    for args in (["--config.check"], ["--web.listen-address", f"127.0.0.1:{free_port()}"]):
        started = time.monotonic()
        result = run_exporter(path, *args)
        assert time.monotonic() - started < 10
        assert_one_clear_error(result, f"cannot read: not a regular file ({SPECIAL[kind]})")


def test_a_config_file_swapped_for_a_fifo_fails_its_reload_and_blocks_no_later_one(start_exporter, tmp_path):
    """A reload that blocked on a FIFO held the reload lock for ever: no later reload could run."""
    exporter = start_exporter({"coordinators": [{"name": "before", "url": f"http://127.0.0.1:{free_port()}", "timeout": "300ms"}],
                               "redis": {"url": f"redis://127.0.0.1:{free_port()}/0", "timeout": "300ms"},
                               "rpc_backends": {"discover": False}, "ollama": {"discover": False}, "dashboard": {"enabled": False}})
    reload_result = lambda: value(exporter.scrape(timeout=3), "sollol_exporter_config_last_reload_successful")  # noqa: E731
    assert reload_result() == 1
    exporter.config_path.unlink()
    os.mkfifo(exporter.config_path)
    exporter.reload()
    wait_for(lambda: reload_result() == 0, 10, interval=0.2, what="the FIFO reload failed")
    assert "not a regular file (a FIFO)" in exporter.read_log()

    exporter.config_path.unlink()
    exporter.write_config({"coordinators": [{"name": "after", "url": f"http://127.0.0.1:{free_port()}", "timeout": "300ms"}],
                           "redis": {"url": f"redis://127.0.0.1:{free_port()}/0", "timeout": "300ms"},
                           "rpc_backends": {"discover": False}, "ollama": {"discover": False}, "dashboard": {"enabled": False}})
    exporter.reload()
    wait_for(lambda: reload_result() == 1, 10, interval=0.2, what="the next reload")
    assert value(exporter.scrape(timeout=3), "sollol_exporter_target_expected", kind="coordinator", target="after") == 1


API_KEY = "llama-key-7Qx"


@pytest.fixture
def guarded_coordinator(tiny_model, tmp_path):
    """A real llama-server whose /metrics and /props need a Bearer key (its /health does not)."""
    from tests.support import llama

    server = llama.start_llama_server(tiny_model, extra_args=["--api-key", API_KEY], log_dir=tmp_path)
    yield server
    server.stop()


@pytest.mark.llama
def test_an_api_key_file_that_is_a_fifo_costs_only_the_key_and_sigterm_still_exits(guarded_coordinator, tmp_path):
    """Before: the first read of the key blocked a probe thread for ever: the coordinator read `hung` at every
    scrape, and SIGTERM never ended the process (the blocked thread was waited for at exit)."""
    key_file = tmp_path / "api.key"
    os.mkfifo(key_file)
    exporter = ExporterProcess({
        "coordinators": [{"name": "guarded", "url": f"http://127.0.0.1:{guarded_coordinator.port}", "api_key_file": str(key_file), "timeout": "2s"}],
        "redis": {"url": f"redis://127.0.0.1:{free_port()}/0", "timeout": "300ms"},
        "rpc_backends": {"discover": False}, "ollama": {"discover": False}, "dashboard": {"enabled": False},
    }, tmp_path)
    try:
        for _ in range(2):
            samples = exporter.scrape(timeout=5)
            assert one_hot(samples, "sollol_coordinator_state", coordinator="guarded") == "ok"
            assert value(samples, "sollol_coordinator_metrics_up", coordinator="guarded") == 0  # no key: 401
        warnings = [line for line in exporter.read_log().splitlines() if 'api_key_file"' in line]  # msg="... api_key_file"
        assert len(warnings) == 1 and "not a regular file (a FIFO)" in warnings[0], warnings

        key_file.unlink()
        key_file.write_text(API_KEY + "\n")  # the key is read at every use: a fixed file is taken at once
        samples = exporter.scrape(timeout=5)
        assert value(samples, "sollol_coordinator_metrics_up", coordinator="guarded") == 1
        assert API_KEY not in exporter.read_log()

        key_file.unlink()
        os.mkfifo(key_file)
        exporter.scrape(timeout=5)
        started = time.monotonic()
        exporter.process.send_signal(signal.SIGTERM)
        assert exporter.process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        stop_process(exporter.process)
        exporter.log.close()
