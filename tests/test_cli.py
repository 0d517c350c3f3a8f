import json
import os
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


def test_config_check_warns_of_each_key_file_it_cannot_use_without_the_key(tmp_path):
    key = tmp_path / "key"
    key.write_text("s3cret-key\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = tmp_path / "config.yml"
    path.write_text(f"coordinators:\n  - url: http://127.0.0.1:1\n    api_key_file: {key}\n"
                    f"  - url: http://127.0.0.1:2\n    api_key_file: {tmp_path / 'missing'}\n"
                    f"  - url: http://127.0.0.1:3\n    api_key_file: {fifo}\n")
    result = run("--config.file", str(path), "--config.check")
    assert result.returncode == 0 and "OK" in result.stdout  # it may come later: read at every scrape
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    # file:line: key, as every config error
    assert lines[0].startswith(f"sollol-exporter: warning: config.yml:5: coordinators[1].api_key_file: {tmp_path / 'missing'}: No such file")
    assert lines[1].startswith(f"sollol-exporter: warning: config.yml:7: coordinators[2].api_key_file: {fifo}: not a regular file")
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
    path.write_text(f"coordinators:\n  - url: http://127.0.0.1:1\n    api_key_file: {key}\n")
    assert run("--config.file", str(path), "--config.check").stderr == ""


def test_a_number_of_thousands_of_digits_is_one_line_at_its_key(tmp_path):
    path = tmp_path / "plain.yml"
    path.write_text("redis:\n  timeout: 0x" + "f" * 400 + "\n")  # YAML reads hexadecimal numbers of any length
    result = run("--config.file", str(path), "--config.check")
    assert result.returncode == 2
    assert "sollol-exporter: plain.yml:2: redis.timeout: duration out of range (0 to about 292y), got " in result.stderr
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


ROOT = Path(__file__).resolve().parent.parent
VALID = str(FIXTURES / "valid" / "full.yml")


def git_head() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


def test_version_names_the_revision_of_the_checkout_it_runs_from():
    from sollol_exporter import __version__

    before = git_head()
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in {f"sollol-exporter {__version__} (revision {head})" for head in (before, git_head())}


def test_help_lists_a_flag_pair_for_every_collector_but_the_exporters_own():
    from sollol_exporter.collectors import OPTIONAL, build_collectors
    from sollol_exporter.collectors.names import CollectorName
    from sollol_exporter.config import Config

    built = [c.name for c in build_collectors(Config())]  # the defaults: dashboard and events on, so every collector
    assert sorted(built) == sorted(CollectorName) and set(OPTIONAL) == set(CollectorName) - {CollectorName.EXPORTER}
    result = run("--help")
    assert result.returncode == 0, result.stderr
    for name in OPTIONAL:
        assert f"--collector.{name}, --no-collector.{name}" in result.stdout, name
    assert "--collector.exporter" not in result.stdout
    assert run("--no-collector.exporter", "--config.check").returncode == 2


def test_collector_flags_name_the_disabled_set_last_flag_winning():
    from sollol_exporter.cli import disabled_collectors, parser

    assert disabled_collectors(parser().parse_args([])) == frozenset()
    args = parser().parse_args(["--no-collector.gpu", "--no-collector.events", "--collector.events", "--no-collector.rpc_backends"])
    assert disabled_collectors(args) == {"gpu", "rpc_backends"}


def test_disabled_collectors_are_dropped_from_build_collectors():
    import dataclasses

    from sollol_exporter.collectors import build_collectors
    from sollol_exporter.config import Config

    collectors = build_collectors(dataclasses.replace(Config(), disabled_collectors=frozenset({"gpu", "ollama"})))
    names = [c.name for c in collectors]
    assert "gpu" not in names and "ollama" not in names and "redis" in names
    exporter = next(c for c in collectors if c.name == "exporter")
    assert exporter.collector_names == [name for name in names if name != "exporter"]  # nor listed in sollol_exporter_collector_success


def test_config_check_is_unchanged_by_the_collector_flags():
    result = run("--config.file", VALID, "--no-collector.redis", "--no-collector.coordinator", "--config.check")
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr
    result = run("--config.file", str(FIXTURES / "invalid" / "unknown_key.yml"), "--no-collector.redis", "--config.check")
    assert result.returncode == 2 and "unknown key" in result.stderr


def test_telemetry_path_is_checked():
    for bad, says in (("metrics", "must start with a single /"), ("//evil.example/x", "must start with a single /"), ("/", "served by the exporter itself"),
                      ("/-/healthy", "served by the exporter itself"), ("/-/ready", "served by the exporter itself"),
                      ("/-/reload", "served by the exporter itself"), ("/a b", "not a URL path"),
                      ("/m?x=1", "not a URL path"), ("/m#top", "not a URL path"), ("/" + "m" * 300, "not a URL path")):
        result = run("--web.telemetry-path", bad, "--config.check")
        assert result.returncode == 2 and "--web.telemetry-path" in result.stderr and says in result.stderr, (bad, result.stderr)
    assert run("--web.telemetry-path", "/exporter/metrics", "--config.file", VALID, "--config.check").returncode == 0


def test_telemetry_path_and_exporter_metrics_defaults():
    from sollol_exporter.cli import parser

    args = parser().parse_args([])
    assert args.telemetry_path == "/metrics" and args.disable_exporter_metrics is False
    assert parser().parse_args(["--web.disable-exporter-metrics"]).disable_exporter_metrics is True
