import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "config"


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "sollol_exporter", *args], capture_output=True, text=True, timeout=30, env=env)


def test_config_check_accepts_a_valid_file():
    result = run("--config.file", str(FIXTURES / "valid" / "full.yml"), "--config.check")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_invalid_config_exits_2_with_one_clear_line():
    result = run("--config.file", str(FIXTURES / "invalid" / "unknown_key.yml"), "--config.check")
    assert result.returncode == 2
    assert "unknown key (did you mean 'timeout'?)" in result.stderr
    assert "Traceback" not in result.stderr


def test_json_log_format(tmp_path):
    result = run("--config.file", str(tmp_path / "missing.yml"), "--log.format", "json")
    assert result.returncode == 2
    entry = json.loads(result.stderr.splitlines()[0])
    assert entry["level"] == "error" and "cannot read" in entry["error"]


def test_bad_listen_address_is_reported():
    result = run("--web.listen-address", "nonsense")
    assert result.returncode == 1
    assert "listen" in result.stderr


def test_version():
    result = run("--version")
    assert result.returncode == 0 and "sollol-exporter" in result.stdout


def test_max_requests_must_be_a_non_negative_integer():
    for bad in ("-1", "many"):
        result = run("--web.max-requests", bad, "--config.check")
        assert result.returncode == 2 and "--web.max-requests" in result.stderr


def test_help_names_the_agent_subcommand_and_the_lifecycle_flag():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert "sollol-exporter agent" in result.stdout
    commands = result.stdout.split("commands:", 1)[1]
    assert commands.split()[0] == "agent" and "rpc-server" in commands
    assert "--web.enable-lifecycle" in result.stdout and "/-/reload" in result.stdout
    agent = run("agent", "--help")
    assert agent.returncode == 0 and "--rpc.port" in agent.stdout


def test_lifecycle_flag_is_off_by_default():
    from sollol_exporter.cli import parser

    assert parser().parse_args([]).enable_lifecycle is False
    assert parser().parse_args(["--web.enable-lifecycle"]).enable_lifecycle is True
