"""Secrets never leave the exporter (issue "Hardening", item 5).

Every config field that can hold a secret gets one, in every position a secret can take: URL user name, URL
password, query parameter, api_key and api_key_file. None may appear on the landing page, in the log (peers
unreachable, so their errors are logged), in `--config.check` output or in any ConfigError.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from urllib.parse import quote

import pytest
import requests
import yaml

from sollol_exporter import config
from tests.support.net import free_port, wait_for

SECRETS = {
    "redis_user": "RedisUserQx7",
    "redis_password": "RedisPassQx7",
    "redis_query": "RedisQueryPassQx7",
    "coordinator_user": "CoordUserQx7",
    "coordinator_password": "CoordPassQx7",
    "coordinator_token": "CoordTokenQx7",
    "api_key": "ApiKeyQx7",
    "token_user": "UserTokenQx7",
    "coordinator_query_key": "CoordQueryKeyQx7",
    "api_key_file": "FileKeyQx7",
    "dashboard_user": "DashUserQx7",
    "dashboard_password": "DashPassQx7",
    "dashboard_secret": "DashSecretQx7",
    "ollama_password": "OllamaPassQx7",
    "backend_password": "BackendPassQx7",
    "static_password": "StaticPassQx7",
}


def leaked(text: str) -> list[str]:
    """The secrets found in text, also percent-encoded or as their distinctive stem."""
    found = []
    for name, secret in SECRETS.items():
        for form in (secret, quote(secret), secret.removesuffix("Qx7")):
            if form in text:
                found.append(name)
                break
    return found


def secret_config(tmp_path) -> dict:
    """Every field that can hold a secret holds one; every peer is a loopback port where nothing listens."""
    key_file = tmp_path / "api.key"
    key_file.write_text(SECRETS["api_key_file"] + "\n")
    s = SECRETS
    return {
        "redis": {"url": f"redis://{s['redis_user']}:{s['redis_password']}@127.0.0.1:{free_port()}/0?password={s['redis_query']}", "timeout": "300ms"},
        "coordinators": [
            {
                "name": "first",
                "url": f"http://{s['coordinator_user']}:{s['coordinator_password']}@127.0.0.1:{free_port()}/?token={s['coordinator_token']}",
                "api_key": s["api_key"],
                "timeout": "300ms",
                "rpc_backends": [f"grpc://backend:{s['backend_password']}@127.0.0.1:50052"],
            },
            {
                "name": "second",
                "url": f"http://{s['token_user']}@127.0.0.1:{free_port()}/?api_key={s['coordinator_query_key']}",
                "api_key_file": str(key_file),
                "timeout": "300ms",
            },
        ],
        "rpc_backends": {"discover": False, "timeout": "300ms", "static": [{"address": f"http://rpc:{s['static_password']}@127.0.0.1:{free_port()}"}]},
        "ollama": {"discover": False, "nodes": [f"http://ollama:{s['ollama_password']}@127.0.0.1:{free_port()}"], "timeout": "300ms"},
        "dashboard": {
            "enabled": True,
            "url": f"http://{s['dashboard_user']}:{s['dashboard_password']}@127.0.0.1:{free_port()}/?secret={s['dashboard_secret']}",
            "timeout": "300ms",
        },
    }


def test_summary_masks_every_secret(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(secret_config(tmp_path)))
    shown = config.summary(config.load(str(path), env={}))
    assert leaked(repr(shown)) == []
    assert shown["coordinators"][0]["api_key"] == "<secret>"
    assert shown["redis"]["url"].startswith("redis://<secret>@127.0.0.1:")


def test_landing_page_and_log_never_show_a_secret(start_exporter, tmp_path):
    exporter = start_exporter(secret_config(tmp_path), extra_args=["--log.level", "debug"])
    for _ in range(2):
        exporter.scrape(timeout=3)
    landing = requests.get(exporter.url + "/", timeout=10)
    assert landing.status_code == 200
    assert "&lt;secret&gt;" in landing.text or "<secret>" in landing.text
    assert leaked(landing.text) == []
    log = wait_for(lambda: _log_with_peer_errors(exporter), 10, what="peer errors in the log")
    assert leaked(log) == [], log


def _log_with_peer_errors(exporter) -> str | None:
    log = exporter.read_log()
    return log if all(word in log for word in ("redis", "coordinator", "dashboard")) else None


def test_config_check_output_never_shows_a_secret(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(secret_config(tmp_path)))
    result = subprocess.run(
        [sys.executable, "-m", "sollol_exporter", "--config.file", str(path), "--config.check"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert leaked(result.stdout + result.stderr) == []


S = SECRETS
# Each breaks one secret-bearing field in a way whose error names that field.
BROKEN = {
    "redis password with a slash": {"redis": {"url": f"redis://{S['redis_user']}:{S['redis_password']}/x@127.0.0.1:6379/0"}},
    "redis password with a question mark": {"redis": {"url": f"redis://:{S['redis_password']}?x@127.0.0.1:6379/0"}},
    "redis unknown option": {"redis": {"url": f"redis://:{S['redis_password']}@127.0.0.1:6379/0?password={S['redis_query']}&bogus=1"}},
    "redis bad option value": {"redis": {"url": f"redis://:{S['redis_password']}@127.0.0.1:6379/0?socket_timeout=x"}},
    "redis port": {"redis": {"url": f"redis://{S['redis_user']}:{S['redis_password']}@127.0.0.1:notaport/0"}},
    "redis scheme": {"redis": {"url": f"http://{S['redis_user']}:{S['redis_password']}@127.0.0.1:6379/0"}},
    "redis unix socket": {"redis": {"url": f"unix://:{S['redis_password']}/x@/tmp/redis.sock"}},
    "coordinator password with a slash": {"coordinators": [{"url": f"http://{S['coordinator_user']}:{S['coordinator_password']}/x@127.0.0.1:1"}]},
    "coordinator port": {"coordinators": [{"url": f"http://{S['coordinator_user']}:{S['coordinator_password']}@127.0.0.1:99999/?token={S['coordinator_token']}"}]},
    "coordinator host": {"coordinators": [{"url": f"http://{S['token_user']}@bad_host!/?api_key={S['coordinator_query_key']}"}]},
    "coordinator scheme": {"coordinators": [{"url": f"ftp://{S['coordinator_user']}:{S['coordinator_password']}@h/?token={S['coordinator_token']}"}]},
    "api_key with a line break": {"coordinators": [{"url": "http://127.0.0.1:1", "api_key": S["api_key"] + "\nX"}]},
    "api_key not latin-1": {"coordinators": [{"url": "http://127.0.0.1:1", "api_key": S["api_key"] + "\u2028"}]},
    "api_key and api_key_file": {"coordinators": [{"url": "http://127.0.0.1:1", "api_key": S["api_key"], "api_key_file": "/dev/null"}]},
    "api_key of the wrong type": {"coordinators": [{"url": "http://127.0.0.1:1", "api_key": {S["api_key"]: 1}}]},
    "dashboard password with a slash": {"dashboard": {"url": f"http://{S['dashboard_user']}:{S['dashboard_password']}/x@127.0.0.1:1"}},
    "dashboard scheme": {"dashboard": {"url": f"gopher://{S['dashboard_user']}:{S['dashboard_password']}@h/?secret={S['dashboard_secret']}"}},
    "ollama node": {"ollama": {"nodes": [f"http://ollama:{S['ollama_password']}@bad_host!:1"]}},
    "backend address": {"rpc_backends": {"static": [{"address": f"grpc://rpc:{S['static_password']}@127.0.0.1:99999"}]}},
    "secret URL in a duration": {"redis": {"timeout": f"redis://{S['redis_user']}:{S['redis_password']}@h/0"}},
    "secret URL in a choice": {"rpc_backends": {"probe": f"http://{S['coordinator_user']}:{S['coordinator_password']}@h"}},
}


@pytest.mark.parametrize("broken", BROKEN.values(), ids=BROKEN.keys())
def test_config_errors_never_show_a_secret(broken, tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(broken, allow_unicode=True))
    with pytest.raises(config.ConfigError) as caught:
        config.load(str(path), env={})
    assert str(caught.value).startswith("config.yml:"), caught.value
    assert leaked(str(caught.value)) == [], caught.value


def test_redis_url_from_the_environment_is_masked_too():
    env = {"SOLLOL_REDIS_URL": f"redis://:{S['redis_password']}@127.0.0.1:6379/0?password={S['redis_query']}"}
    assert leaked(repr(config.summary(config.load(None, env=env)))) == []
    with pytest.raises(config.ConfigError) as caught:
        config.load(None, env={"SOLLOL_REDIS_URL": f"redis://:{S['redis_password']}/x@127.0.0.1:6379/0"})
    assert leaked(str(caught.value)) == []


def _format(style: str, message: str, **values) -> str:
    from sollol_exporter import logs

    record = logging.LogRecord("sollol_exporter.scrape", logging.WARNING, __file__, 1, message, None, None)
    record.fields = values
    return logs.Formatter(style, debug=False).format(record)


@pytest.mark.parametrize("style", ["logfmt", "json"])
def test_log_masks_a_secret_that_a_peer_echoes(style, tmp_path):
    """Defence in depth: once the config is loaded, its secrets are masked in any log field, whoever wrote it."""
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(secret_config(tmp_path)))
    config.load(str(path), env={})
    echoed = f"401 for Bearer {S['api_key']}; key file said {S['api_key_file']}; redis said {S['redis_password']}"
    line = _format(style, "peer error: " + echoed, error=echoed, url=f"http://x:{S['dashboard_password']}@h/?secret={S['dashboard_secret']}")
    assert leaked(line) == [], line
    assert "<secret>" in line


def test_uncaught_thread_exception_is_one_masked_log_line(tmp_path):
    """A thread dying with a secret in its error (as a reload did with a Redis password) must not print it raw."""
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(secret_config(tmp_path)))
    script = (
        "import threading, sys\n"
        "from sollol_exporter import config, logs\n"
        "logs.setup('info', 'logfmt')\n"
        f"config.load({str(path)!r}, env={{}})\n"
        f"def fail(): raise ValueError('Port could not be cast to integer value as {S['redis_password']}')\n"
        "thread = threading.Thread(target=fail); thread.start(); thread.join()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert "Traceback" not in result.stderr
    assert leaked(result.stderr) == [], result.stderr
    assert "ValueError" in result.stderr


def test_a_secret_named_secret_leaves_the_markers_alone(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("redis:\n  url: redis://:secret@127.0.0.1:6379/0?password=secret\n")
    shown = config.summary(config.load(str(path), env={}))
    assert shown["redis"]["url"] == "redis://<secret>@127.0.0.1:6379/0?password=<secret>"
