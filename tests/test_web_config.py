"""`--web.config.file` in the exporter-toolkit format: what is accepted, what is refused (as `file:line: what`,
never quoting a secret), the command line's checks, and TLS on the node agent's gRPC port."""

from __future__ import annotations

import ssl
import subprocess
import sys
import textwrap

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.net import free_port, stop_process
from tests.support.tls import bcrypt_hash, handshake, make_certificates, tls_section

LOOP = "127.0.0.1"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


def write(tmp_path, text: str, name: str = "web.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(path):
    from sollol_exporter.web.watch import load as load_web

    return load_web(str(path))


def refusal(path) -> str:
    from sollol_exporter.web.config import WebConfigError

    with pytest.raises(WebConfigError) as caught:
        load(path)
    return str(caught.value)


def test_a_full_exporter_toolkit_file_loads(tmp_path, certs):
    (tmp_path / "tls").mkdir()
    for source, name in ((certs.server.cert, "server.crt"), (certs.server.key, "server.key"), (certs.ca, "ca.crt")):
        (tmp_path / "tls" / name).write_bytes(source.read_bytes())
    path = write(tmp_path, f"""\
        tls_server_config:
          cert_file: tls/server.crt
          key_file: tls/server.key
          client_auth_type: RequireAndVerifyClientCert
          client_ca_file: tls/ca.crt
          client_allowed_sans: [prometheus@example.test]
          min_version: TLS12
          max_version: TLS13
          cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
          prefer_server_cipher_suites: true
          curve_preferences: [X25519, CurveP256]
        http_server_config:
          http2: true
          headers:
            Content-Security-Policy: default-src 'self'
            X-Frame-Options: sameorigin
        basic_auth_users:
          prometheus: {bcrypt_hash("pw")}
        rate_limit:
          interval: 100ms
          burst: 5
        """)
    loaded = load(path)
    tls = loaded.config.tls
    assert tls.cert_file == str(tmp_path / "tls" / "server.crt")  # relative to the file, as exporter-toolkit
    assert tls.requires_client_cert and tls.ciphers == ("ECDHE-RSA-AES128-GCM-SHA256",)
    assert loaded.context is not None
    assert loaded.config.headers["X-Frame-Options"] == "sameorigin"
    assert loaded.config.rate_interval == pytest.approx(0.1) and loaded.config.rate_burst == 5
    assert list(loaded.config.users) == ["prometheus"]


def test_inline_certificate_and_key(tmp_path, certs):
    path = write(tmp_path, yaml.safe_dump({"tls_server_config": {
        "cert": certs.server.cert.read_text(), "key": certs.server.key.read_text(),
        "client_ca": certs.ca.read_text(), "client_auth_type": "VerifyClientCertIfGiven"}}))
    context = load(path).context
    presented, _ = handshake(context, certs.ca)
    assert presented == ssl.PEM_cert_to_DER_cert(certs.server.cert.read_text())  # the inline certificate
    assert handshake(context, certs.ca)[1] is None  # a client certificate only if given...
    _, accepted = handshake(context, certs.ca, certs.client)
    assert dict(field[0] for field in accepted["subject"])["commonName"] == "prometheus"
    with pytest.raises(ssl.SSLError):  # ...and then checked against the inline client_ca
        handshake(context, certs.ca, certs.stranger)


def test_empty_file_means_no_tls_and_no_auth(tmp_path):
    loaded = load(write(tmp_path, "# nothing yet\n"))
    assert loaded.context is None and loaded.config.users == {}


@pytest.mark.parametrize("text, line, what", [
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth: x\n", 4, "tls_server_config.client_auth: unknown key"),
    ("basic_auth_users: {}\nhttp_server_config:\n  headers:\n    Server: nginx\n", 4, 'HTTP header "Server" can not be configured'),
    ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", 3, "invalid value for X-Frame-Options"),
    ("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n", 3, "X-Content-Type-Options"),
    ("tls_server_config:\n  cert_file: a\n", 1, "missing one of key or key_file"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Sometimes\n", 4, "client_auth_type: invalid value (one of NoClientCert,"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n", 1, "without a Client Auth Policy"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: SSL3\n", 4, "min_version: unknown TLS version (one of TLS10,"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [RC4]\n", 4, "cipher_suites[0]: unknown cipher"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_allowed_sans: [x]\n", 4, "client_allowed_sans: requires client_auth_type"),
    ("rate_limit:\n  interval: soon\n", 2, "rate_limit.interval: expected a duration such as 250ms"),
    ("basic_auth_users:\n  a: x\n  a: y\n", 3, "basic_auth_users.a: duplicate key"),
    ("basic_auth_users:\n  a: $2y$03$" + "a" * 53 + "\n", 2, "has cost 3; bcrypt accepts 4 to 31"),
    ("basic_auth_users:\n  b: $2y$10$" + "a" * 53 + "\n  a: $2b$32$" + "a" * 53 + "\n", 3, "basic_auth_users.a: the hash has cost 32"),
    ("base: &b {x: 1}\nother: *b\n", 2, "aliases are not allowed"),
    ("tls_server_config: [1, 2]\n", 1, "expected a mapping"),
    ("http_server_config:\n  http2: maybe\n", 2, "expected true or false"),
    ("basic_auth_users:\n  a: [1]\n", 2, "basic_auth_users.a: expected a string, got list"),
    ("a: b: c\n", 1, "invalid YAML"),
    ("---\n---\n", 2, "more than one YAML document"),
])
def test_bad_files_are_refused_with_file_and_line(tmp_path, text, line, what):
    path = write(tmp_path, text)
    message = refusal(path)
    assert message.startswith(f"{path}:{line}: "), message
    assert what in message, message


def test_scalars_are_read_as_go_reads_them(tmp_path, certs):
    """exporter-toolkit reads the file with Go's yaml.v2: null is a setting's zero value, any scalar fills a string."""
    assert load(write(tmp_path, "tls_server_config:\nhttp_server_config: ~\nbasic_auth_users:\nrate_limit: {interval: ~}\n")).context is None
    text = (f"tls_server_config:\n  cert_file: {certs.server.cert}\n  key_file: {certs.server.key}\n  min_version: ~\n"
            "  prefer_server_cipher_suites: ~\n  client_allowed_sans: ~\n"
            "http_server_config:\n  headers: {X-XSS-Protection: ~, Strict-Transport-Security: 0}\n")
    loaded = load(write(tmp_path, text)).config
    assert (loaded.tls.min_version, loaded.tls.prefer_server_cipher_suites, loaded.tls.client_allowed_sans) == ("TLS12", False, ())
    assert loaded.headers == {"Strict-Transport-Security": "0"}  # an empty header is not sent


@pytest.mark.parametrize(("text", "line", "what"), [
    ("rate_limit:\n  interval: 1s\n  burst: 1000000000\n", 3, "rate_limit.burst: must be at most 999999999"),
    ("rate_limit:\n  interval: 5\n  burst: 1\n", 2, "rate_limit.interval: expected a duration"),  # Go needs a unit
    ("rate_limit:\n  interval: 1d\n  burst: 1\n", 2, "rate_limit.interval: expected a duration"),  # and has no days
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites:\n    - TLS_AES_128_GCM_SHA256\n    - RC4\n", 6,
     "tls_server_config.cipher_suites[1]: unknown cipher"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n", 4,
     "tls_server_config.min_version: TLS13 is above max_version TLS12"),
])
def test_values_are_refused_at_their_own_line(tmp_path, text, line, what):
    path = write(tmp_path, text)
    assert refusal(path).startswith(f"{path}:{line}: {what}")


def test_refusals_never_quote_secrets(tmp_path, certs):
    hashed = bcrypt_hash("pw")
    assert hashed[:20] not in refusal(write(tmp_path, f"basic_auth_users:\n  a: '{hashed[:-1]}'\n"))
    assert "not a bcrypt hash" in refusal(write(tmp_path, "basic_auth_users:\n  a: plain-text-password\n"))
    assert "plain-text-password" not in refusal(write(tmp_path, "basic_auth_users:\n  a: plain-text-password\n"))
    secret_key = "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"
    message = refusal(write(tmp_path, yaml.safe_dump({"tls_server_config": {"cert": certs.server.cert.read_text(), "key": secret_key}})))
    assert "TOPSECRET" not in message and "failed to load the certificate and key" in message


# A password hash pasted in the wrong place: any value of this file may be a secret, so no error quotes one.
HASH = bcrypt_hash("pw")
MISPLACED_HASH = [
    (f"http_server_config:\n  http2: {HASH}\n", 2, "http_server_config.http2: expected true or false, got str"),
    (f"rate_limit:\n  burst: {HASH}\n", 2, "rate_limit.burst: expected a whole number >= 0, got str"),
    (f"rate_limit:\n  interval: {HASH}\n", 2, "rate_limit.interval: expected a duration such as 250ms"),
    (f"tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: {HASH}\n", 4, "tls_server_config.client_auth_type: invalid value"),
    (f"tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: {HASH}\n", 4, "tls_server_config.max_version: unknown TLS version"),
    (f"tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites:\n    - {HASH}\n", 5, "tls_server_config.cipher_suites[0]: unknown cipher"),
    (f"tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences:\n    - {HASH}\n", 5,
     "tls_server_config.curve_preferences[0]: unknown curve"),
    (f"http_server_config:\n  headers:\n    X-Frame-Options: {HASH}\n", 3, "http_server_config.headers.X-Frame-Options: invalid value"),
    # ...and a hash taken for a name
    (f"basic_auth_users:\n  {HASH}:\n", 2,
     "basic_auth_users.<a bcrypt hash>: the password is not a bcrypt hash (the user name looks like one: write `name: hash`)"),
    (f"basic_auth_users:\n  {HASH}: x\n  {HASH}: y\n", 3, "basic_auth_users.<a bcrypt hash>: duplicate key"),
    (f"basic_auth_users:\n  {HASH}: [x]\n", 2, "basic_auth_users.<a bcrypt hash>: expected a string, got list"),
    (f"http_server_config:\n  headers:\n    {HASH}: x\n", 3, 'http_server_config.headers.<a bcrypt hash>: HTTP header "<a bcrypt hash>" can not'),
    (f"rate_limit:\n  {HASH}: 1\n", 2, "rate_limit.<a bcrypt hash>: unknown key"),
]


@pytest.mark.parametrize(("text", "line", "what"), MISPLACED_HASH, ids=[what.partition(":")[0] for _, _, what in MISPLACED_HASH])
def test_a_misplaced_password_hash_is_never_quoted(tmp_path, text, line, what):
    path = write(tmp_path, text)
    message = refusal(path)
    assert message.startswith(f"{path}:{line}: {what}"), message
    assert "$2" not in message and HASH[7:15] not in message and HASH[-8:] not in message, message


def test_a_hash_followed_by_a_line_break_is_refused(tmp_path):
    """A YAML `|` block keeps the line break after the hash: no password would ever match it."""
    path = write(tmp_path, f"basic_auth_users:\n  prometheus: |\n    {HASH}\n")
    message = refusal(path)
    assert message.startswith(f"{path}:2: basic_auth_users.prometheus: the bcrypt hash has a line break or spaces around it"), message
    assert HASH[7:15] not in message
    loaded = load(write(tmp_path, f"basic_auth_users:\n  prometheus: |-\n    {HASH}\n"))
    assert loaded.config.users == {"prometheus": HASH}


HUGE = "0x" + "f" * 4000  # YAML reads hexadecimal numbers of any length; Python has no text for this one


@pytest.mark.parametrize(("text", "line", "what"), ids=["http2", "burst", "negative burst", "interval", "password"], argvalues=[
    (f"http_server_config:\n  http2: {HUGE}\n", 2, "http_server_config.http2: expected true or false, got int"),
    (f"rate_limit:\n  burst: {HUGE}\n", 2, "rate_limit.burst: too large"),
    (f"rate_limit:\n  burst: -{HUGE}\n", 2, "rate_limit.burst: expected a whole number >= 0, got a negative number"),
    (f"rate_limit:\n  interval: {HUGE}\n", 2, "rate_limit.interval: expected a duration such as 250ms"),
    (f"basic_auth_users:\n  a: {HUGE}\n", 2, "basic_auth_users.a: the password is not a bcrypt hash"),
])
def test_a_number_of_thousands_of_digits_is_refused_at_its_key(tmp_path, text, line, what):
    path = write(tmp_path, text)
    assert refusal(path).startswith(f"{path}:{line}: {what}")


def test_missing_and_mismatched_certificate_files(tmp_path, certs):
    message = refusal(write(tmp_path, yaml.safe_dump({"tls_server_config": {"cert_file": str(tmp_path / "nope.crt"), "key_file": str(certs.server.key)}})))
    assert "failed to read cert_file" in message
    other = make_certificates(tmp_path / "other")
    message = refusal(write(tmp_path, yaml.safe_dump({"tls_server_config": {"cert_file": str(certs.server.cert), "key_file": str(other.server.key)}})))
    assert "failed to load the certificate and key" in message


def run(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "sollol_exporter", *args], capture_output=True, text=True, timeout=timeout)


def test_config_check_validates_the_web_config(tmp_path, certs):
    good = write(tmp_path, yaml.safe_dump({"tls_server_config": tls_section(certs)}), "good.yml")
    result = run("--web.config.file", str(good), "--config.check")
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr
    bad = write(tmp_path, "tls_server_config:\n  cert_file: x.crt\n  key_file: x.key\n  bogus: 1\n", "bad.yml")
    result = run("--web.config.file", str(bad), "--config.check")
    assert result.returncode == 2
    assert f"{bad}:4: tls_server_config.bogus: unknown key (known: cert, key, " in result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_refuses_a_number_of_thousands_of_digits_in_one_line(tmp_path):
    bad = write(tmp_path, f"http_server_config:\n  http2: {HUGE}\n", "bad.yml")
    result = run("--web.config.file", str(bad), "--config.check")
    assert result.returncode == 2
    assert f"sollol-exporter: {bad}:2: http_server_config.http2: expected true or false, got int\n" in result.stderr
    assert "Traceback" not in result.stderr


def test_start_refuses_an_unusable_web_config(tmp_path):
    bad = write(tmp_path, "basic_auth_users:\n  u: secret-in-clear\n", "bad.yml")
    result = run("--web.config.file", str(bad), "--web.listen-address", f"{LOOP}:{free_port()}")
    assert result.returncode == 2
    assert f"{bad}:2:" in result.stderr and "secret-in-clear" not in result.stderr and "Traceback" not in result.stderr


# -- the node agent's gRPC port (no worker needed: a port nobody listens on is NOT_SERVING) -------------------------

class TLSAgent:
    def __init__(self, tmp_path, web_config: dict):
        self.port = free_port()
        self.web_config = tmp_path / f"agent-web-{self.port}.yml"
        self.web_config.write_text(yaml.safe_dump(web_config))
        self.log = open(tmp_path / f"agent-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sollol_exporter", "agent", "--web.listen-address", f"{LOOP}:{self.port}",
             "--rpc.port", str(free_port()), "--web.config.file", str(self.web_config)],
            stdout=self.log, stderr=subprocess.STDOUT)

    def check(self, credentials) -> int:
        options = [("grpc.ssl_target_name_override", "localhost")]
        with grpc.secure_channel(f"{LOOP}:{self.port}", credentials, options=options) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status

    def stop(self):
        stop_process(self.process)
        self.log.close()


def test_agent_serves_grpc_over_tls_and_requires_client_certificates(tmp_path, certs):
    agent = TLSAgent(tmp_path, {"tls_server_config": tls_section(certs, client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(certs.ca))})
    try:
        ca = certs.ca.read_bytes()
        trusted = grpc.ssl_channel_credentials(ca, certs.client.key.read_bytes(), certs.client.cert.read_bytes())
        assert agent.check(trusted) == health_pb2.HealthCheckResponse.NOT_SERVING
        for credentials in (grpc.ssl_channel_credentials(ca),
                            grpc.ssl_channel_credentials(ca, certs.stranger.key.read_bytes(), certs.stranger.cert.read_bytes())):
            with pytest.raises(grpc.FutureTimeoutError):
                agent.check(credentials)
        with grpc.insecure_channel(f"{LOOP}:{agent.port}") as channel, pytest.raises(grpc.RpcError):
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
    finally:
        agent.stop()


def test_agent_refuses_a_bad_web_config(tmp_path):
    bad = write(tmp_path, "tls_server_config:\n  cert_file: a\n", "bad.yml")
    result = run("agent", "--rpc.port", "1", "--web.listen-address", f"{LOOP}:{free_port()}", "--web.config.file", str(bad))
    assert result.returncode == 2 and f"{bad}:1:" in result.stderr


# -- hostile files: deep nesting, special files, huge files, an unwritable temporary directory --------------------

DEEP = "basic_auth_users:\n  a: " + "[" * 20000 + "]" * 20000 + "\n"


def test_a_deeply_nested_file_is_refused_quickly_with_file_and_line(tmp_path):
    import time

    path = write(tmp_path, DEEP)
    started = time.monotonic()
    message = refusal(path)
    assert time.monotonic() - started < 2
    assert message.startswith(f"{path}:2: ") and "nested deeper than" in message, message


def test_config_check_and_start_refuse_a_deeply_nested_file_cleanly(tmp_path):
    path = write(tmp_path, DEEP, "deep.yml")
    for args in (("--config.check",), ("--web.listen-address", f"{LOOP}:{free_port()}")):
        result = run("--web.config.file", str(path), *args)
        assert result.returncode == 2, result.stderr
        assert f"{path}:2: " in result.stderr and "Traceback" not in result.stderr and "uncaught" not in result.stderr


def test_an_unexpected_error_in_a_reload_is_remembered_not_retried(tmp_path, monkeypatch):
    from sollol_exporter.web import watch

    path = write(tmp_path, "basic_auth_users:\n  a: " + bcrypt_hash("pw") + "\n")
    watcher = watch.WebConfigWatcher(str(path))
    before = watcher.loaded
    calls = []

    def broken(name):
        calls.append(name)
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(watch, "load", broken)
    path.write_text("# changed\n")
    for _ in range(3):
        assert watcher.current() is before
    assert len(calls) == 1 and watcher.failed_signature is not None


def test_a_file_changed_during_a_load_is_loaded_again(tmp_path, monkeypatch):
    import os

    from sollol_exporter.web import watch

    path = write(tmp_path, "basic_auth_users:\n  old: " + bcrypt_hash("pw") + "\n")
    watcher = watch.WebConfigWatcher(str(path))
    real_load = watch.load
    changed = []

    def load_then_change(name):
        loaded = real_load(name)
        if not changed:  # the file is replaced after it was read, before the load returns
            changed.append(True)
            path.write_text("basic_auth_users:\n  new: " + bcrypt_hash("pw") + "\n")
            os.utime(path, ns=(1, 2_000_000_000_000_000_000))
        return loaded

    monkeypatch.setattr(watch, "load", load_then_change)
    os.utime(path, ns=(1, 1_000_000_000_000_000_000))
    assert list(watcher.current().config.users) == ["old"]  # the version read
    assert list(watcher.current().config.users) == ["new"]  # and the change is not missed


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "huge"])
def test_tls_files_must_be_small_regular_files(tmp_path, certs, kind):
    import os

    if kind == "fifo":
        special = tmp_path / "cert.fifo"
        os.mkfifo(special)
    elif kind == "device":
        special = "/dev/zero"
    elif kind == "directory":
        special = tmp_path
    else:
        special = tmp_path / "huge.crt"
        special.write_bytes(certs.server.cert.read_bytes() + b"\n" * (2 << 20))
    path = write(tmp_path, yaml.safe_dump({"tls_server_config": {"cert_file": str(special), "key_file": str(certs.server.key)}}))
    result = run("--web.config.file", str(path), "--config.check", timeout=20)  # a FIFO would hang a blocking read
    assert result.returncode == 2, result.stderr
    assert "failed to read cert_file" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert ("larger than" if kind == "huge" else "not a regular file") in result.stderr


def test_a_tls_file_swapped_for_a_fifo_after_it_was_read_cannot_block_the_load(tmp_path, certs, monkeypatch):
    """The certificate is loaded from the bytes read and checked, not from the path again: a FIFO put in its place
    in between blocked load_cert_chain (and with it every request waiting for the web config) until a writer came."""
    import os
    import threading

    from sollol_exporter.web import tls

    cert_file = tmp_path / "server.crt"
    cert_file.write_bytes(certs.server.cert.read_bytes())
    path = write(tmp_path, yaml.safe_dump({"tls_server_config": {"cert_file": str(cert_file), "key_file": str(certs.server.key)}}))
    real_read = tls._read

    def read_then_swap(file_path, what, config_path):
        data = real_read(file_path, what, config_path)
        if what == "cert_file":
            os.unlink(file_path)
            os.mkfifo(file_path)
        return data

    monkeypatch.setattr(tls, "_read", read_then_swap)
    outcome = []
    loader = threading.Thread(target=lambda: outcome.append(load(path)), daemon=True)
    loader.start()
    loader.join(10)
    if loader.is_alive():  # unblock it: a writer that closes at once ends the read
        os.close(os.open(cert_file, os.O_WRONLY | os.O_NONBLOCK))
        loader.join(5)
    assert outcome and outcome[0].context is not None, "the load blocked on the FIFO"


@pytest.mark.parametrize(("text", "line", "where"), [
    ("basic_auth_users: !users\n  prometheus: x\n", 1, "basic_auth_users"),
    ("tls_server_config:\n  cipher_suites: !list [TLS_AES_128_GCM_SHA256]\n", 2, "tls_server_config.cipher_suites"),
    ("tls_server_config:\n  cert_file: !!python/name:os.system\n", 2, "tls_server_config.cert_file"),
    ("http_server_config:\n  !key http2: true\n", 2, "http_server_config.http2"),
], ids=["on a mapping", "on a list", "on a value", "on a key"])
def test_unknown_yaml_tags_are_refused_in_the_web_config(tmp_path, text, line, where):
    message = refusal(write(tmp_path, text))
    assert message.startswith(f"{tmp_path / 'web.yml'}:{line}: {where}: unknown YAML tag"), message


def test_file_certificates_need_no_temporary_directory(tmp_path, certs, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "read-only-root" / "tmp"))  # does not exist: nothing is writable
    assert load(write(tmp_path, yaml.safe_dump({"tls_server_config": tls_section(certs)}))).context is not None
    inline = {"cert": certs.server.cert.read_text(), "key": certs.server.key.read_text()}
    assert load(write(tmp_path, yaml.safe_dump({"tls_server_config": inline}))).context is not None  # memfd


def test_inline_pem_without_anywhere_to_stage_it_is_a_clear_error(tmp_path, certs, monkeypatch):
    import os
    import tempfile

    from sollol_exporter.web import tls

    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr(tls, "SHM", str(tmp_path / "no-shm"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-tmp"))
    message = refusal(write(tmp_path, yaml.safe_dump({"tls_server_config": {
        "cert": certs.server.cert.read_text(), "key": certs.server.key.read_text()}})))
    assert "inline cert and key" in message and "BEGIN" not in message, message
    assert load(write(tmp_path, yaml.safe_dump({"tls_server_config": tls_section(certs)}))).context is not None


# -- basic auth ------------------------------------------------------------------------------------------------------

def test_a_flood_of_wrong_passwords_does_not_delay_cached_credentials():
    import threading
    import time

    import bcrypt

    from sollol_exporter.web.auth import BasicAuth

    users = {"prometheus": bcrypt.hashpw(b"right", bcrypt.gensalt(10)).decode()}
    auth = BasicAuth()

    def header(password: str) -> str:
        import base64

        return "Basic " + base64.b64encode(f"prometheus:{password}".encode()).decode()

    assert auth.verify(users, header("right"))  # now cached
    stop = threading.Event()

    def flood(i):
        n = 0
        while not stop.is_set():
            n += 1
            auth.verify(users, header(f"wrong-{i}-{n}"))

    flooders = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(10)]
    for thread in flooders:
        thread.start()
    try:
        time.sleep(0.3)
        started = time.monotonic()
        bcrypt.checkpw(b"wrong", users["prometheus"].encode())
        one_check = time.monotonic() - started  # under the same load: a verify that waited for a check takes longer
        worst = 0.0
        for _ in range(10):
            started = time.monotonic()
            assert auth.verify(users, header("right"))
            worst = max(worst, time.monotonic() - started)
            time.sleep(0.02)
        assert worst < one_check, (worst, one_check)
    finally:
        stop.set()
        for thread in flooders:
            thread.join(5)


def test_passwords_longer_than_72_bytes_compare_their_first_72_as_go_does():
    import base64

    import bcrypt

    from sollol_exporter.web.auth import BasicAuth

    password = "p" * 72
    users = {"u": bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}
    auth = BasicAuth()

    def header(text: str) -> str:
        return "Basic " + base64.b64encode(f"u:{text}".encode()).decode()

    assert auth.verify(users, header(password))
    assert auth.verify(users, header(password + "anything after byte 72"))
    assert not auth.verify(users, header("q" + password[1:] + "tail"))
