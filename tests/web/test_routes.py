"""The exporter as users run it: its console entry point in a subprocess, scraped over HTTP."""

import gzip
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.collect import base_config
from tests.support.exporter import parse, series, value
from tests.support.replay import ReplayServer, Route


@pytest.fixture
def exporter(start_exporter, redis_db):
    return start_exporter(base_config(redis_db.url, ollama={"discover": False}))


def git_head() -> str:
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


def test_metrics_is_valid_prometheus_text_and_promtool_clean(start_exporter, redis_db):
    before = git_head()  # the exporter runs from this checkout: its revision is HEAD (read twice: others commit)
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False}))
    reply = exporter.scrape_text()
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = parse(reply.text)
    version = __import__("sollol_exporter").__version__
    (labels,) = series(samples, "sollol_exporter_build_info")
    labels = dict(labels)
    assert labels["version"] == version and labels["python_version"] == __import__("platform").python_version()
    assert labels["revision"] in (before, git_head()) and set(labels) == {"version", "revision", "python_version"}
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (the test command installs it with apt)")
    lint = subprocess.run([promtool, "check", "metrics"], input=reply.text, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_openmetrics_is_negotiated(exporter):
    reply = exporter.scrape_text(headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert reply.headers["Content-Type"].startswith("application/openmetrics-text")
    assert reply.text.rstrip().endswith("# EOF")


def test_gzip_when_asked(exporter):
    reply = requests.get(exporter.url + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True)
    assert reply.headers["Content-Encoding"] == "gzip"
    assert b"sollol_redis_up" in gzip.decompress(reply.raw.read())


def test_health_ready_landing_and_unknown_paths(exporter):
    assert requests.get(exporter.url + "/-/healthy", timeout=5).status_code == 200
    assert requests.get(exporter.url + "/-/ready", timeout=5).status_code == 200
    assert requests.get(exporter.url + "/nope", timeout=5).status_code == 404
    assert requests.post(exporter.url + "/metrics", timeout=5).status_code == 405
    exporter.scrape()
    page = requests.get(exporter.url + "/", timeout=5)
    assert page.status_code == 200
    assert "SOLLOL exporter" in page.text and "Last probe per target" in page.text
    assert "redis" in page.text


def test_landing_page_escapes_what_targets_say(start_exporter, redis_db):
    hostile = ReplayServer({"/health": Route("<script>alert(1)</script>", status=500)})
    try:
        exporter = start_exporter(base_config(redis_db.url, coordinators=[{"url": hostile.url, "name": "x<b>y"}], ollama={"discover": False}))
        exporter.scrape()
        page = requests.get(exporter.url + "/", timeout=5).text
        assert "<b>" not in page and "x&lt;b&gt;y" in page
    finally:
        hostile.stop()


def test_scrape_timeout_header_bounds_a_scrape_with_hung_targets(start_exporter, redis_db):
    hung = ReplayServer({"/health": Route({"status": "ok"}, delay=20)})
    try:
        exporter = start_exporter(base_config(redis_db.url, coordinators=[{"url": hung.url, "name": "hung", "timeout": "30s"}],
                                              ollama={"discover": False}, scrape={"timeout_margin": "250ms"}))
        started = time.monotonic()
        samples = exporter.scrape(timeout=1.5)
        assert time.monotonic() - started < 1.5
        assert value(samples, "sollol_coordinator_up", coordinator="hung") == 0
        assert value(samples, "sollol_coordinator_state", coordinator="hung", state="hung") == 1
        assert value(samples, "sollol_exporter_scrape_timeout_seconds") == pytest.approx(1.25)
        started = time.monotonic()
        samples = exporter.scrape(timeout=1.0)
        assert time.monotonic() - started < 1.0
        assert value(samples, "sollol_coordinator_state", coordinator="hung", state="hung") == 1
    finally:
        hung.stop()


def test_concurrent_scrapes_read_a_coordinator_once(start_exporter, redis_db):
    coordinator = ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route("llamacpp:tokens_predicted_total 7\n", delay=2.0)})
    try:
        exporter = start_exporter(base_config(redis_db.url, coordinators=[{"url": coordinator.url, "name": "c"}], ollama={"discover": False}))
        results = []
        threads = [threading.Thread(target=lambda: results.append(exporter.scrape())) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 5
        assert all(value(r, "sollol_coordinator_tokens_predicted_total", coordinator="c") == 7 for r in results)
        assert coordinator.paths().count("/metrics") == 1
    finally:
        coordinator.stop()


def test_failures_are_logged_once_not_every_scrape(start_exporter, redis_db):
    exporter = start_exporter(base_config("redis://127.0.0.1:1/0", ollama={"discover": False}))
    for _ in range(3):
        samples = exporter.scrape()
        assert value(samples, "sollol_redis_up") == 0
    log = exporter.read_log()
    assert log.count("collector=redis") == 1
    assert "Traceback" not in log


def test_sighup_reloads_and_a_bad_config_keeps_the_old_one(start_exporter, redis_db):
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False}))
    exporter.write_config(base_config(redis_db.url, ollama={"discover": False, "nodes": ["127.0.0.1:9"]}))
    exporter.reload()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and value(exporter.scrape(), "sollol_ollama_node_up", node="127.0.0.1:9") is None:
        time.sleep(0.1)
    assert value(exporter.scrape(), "sollol_ollama_node_up", node="127.0.0.1:9") == 0
    exporter.config_path.write_text("redis: {timout: 1s}\n")
    exporter.reload()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and value(exporter.scrape(), "sollol_exporter_config_last_reload_successful") != 0:
        time.sleep(0.1)
    samples = exporter.scrape()
    assert value(samples, "sollol_exporter_config_last_reload_successful") == 0
    assert value(samples, "sollol_ollama_node_up", node="127.0.0.1:9") == 0
    assert "timout" in exporter.read_log()


def test_a_fully_populated_scrape_is_promtool_clean(start_exporter, redis_db, ollama, dashboard):
    import json

    from tests.fixtures.llamacpp_metrics import CURRENT
    from tests.fixtures.sollol import GPU, RPC_NODE, VARIANT_A, fresh, routing_event
    from tests.support.net import wait_for
    from tests.support.sollol_events import OLLAMA_CHANNEL, RPC_CHANNEL, ollama_error, ollama_response, rpc_event

    coordinator = ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route(CURRENT, content_type="text/plain"),
                                "/props": Route({"build_info": "b10587-3f545becc", "total_slots": 1, "is_sleeping": False})})
    doc = json.loads(fresh(VARIANT_A))
    doc["nodes"][0]["host"] = ollama.address
    redis_db.client.set("sollol:router:metadata", json.dumps(doc), ex=30)
    redis_db.client.set("sollol:gpu:10.0.0.5:11434", json.dumps(dict(GPU, timestamp=time.time())))
    redis_db.client.set("sollol:rpc:node:127.0.0.1:9", json.dumps(RPC_NODE))
    try:
        exporter = start_exporter(base_config(redis_db.url, coordinators=[{"url": coordinator.url, "name": "main"}],
                                              dashboard={"enabled": True, "url": dashboard.url}))
        exporter.scrape()
        redis_db.client.xadd("sollol:routing_stream", {"event": json.dumps(routing_event())})
        wait_for(lambda: value(exporter.scrape(), "sollol_events_subscribed") == 1, 10, what="subscribed")
        for message in (ollama_response("10.0.0.5:11434", "m", 700.0), ollama_error("10.0.0.5:11434", "m", "HTTP 500")):
            redis_db.client.publish(OLLAMA_CHANNEL, message)
        for message in (rpc_event("rpc_response", coordinator.address, model="m", latency_ms=900.0, completion_tokens=5),
                        rpc_event("coordinator_start", coordinator.address, coordinator=coordinator.address),
                        rpc_event("rpc_backend_connect", coordinator.address, rpc_backends=2, total_configured=3)):
            redis_db.client.publish(RPC_CHANNEL, message)
        wait_for(lambda: value(exporter.scrape(), "sollol_events_received_total", channel="rpc") == 3, 10, what="events counted")
        reply = exporter.scrape_text()
        samples = parse(reply.text)
        for family in ("sollol_coordinator_speculative_accepted_tokens_by_position_total", "sollol_gpu_memory_free_bytes",
                       "sollol_rpc_node_registered", "sollol_routing_events_total", "sollol_ollama_model_vram_bytes",
                       "sollol_application_up", "sollol_router_latency_seconds", "sollol_coordinator_build_info",
                       "sollol_request_duration_seconds_bucket", "sollol_request_errors_total",
                       "sollol_coordinator_request_duration_seconds_bucket", "sollol_coordinator_lifecycle_events_total",
                       "sollol_coordinator_rpc_backends_configured"):
            assert any(name == family for name, _ in samples), family
        lint = subprocess.run(["promtool", "check", "metrics"], input=reply.text, capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        assert ":" not in "".join(name for name, _ in samples)
    finally:
        coordinator.stop()


# -- behind a web config (exporter-toolkit format): TLS, client certificates, basic auth, headers, reload ----------

import ssl  # noqa: E402

from tests.support.tls import SecuredExporter, bcrypt_hash, make_certificates, tls_section  # noqa: E402


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def secured(tmp_path, redis_db):
    started = []

    def start(web_config, **kwargs):
        exporter = SecuredExporter(base_config(redis_db.url, ollama={"discover": False}), web_config, tmp_path, **kwargs)
        started.append(exporter)
        return exporter

    yield start
    for exporter in started:
        exporter.stop()


def test_tls_serves_metrics_and_refuses_plain_http(secured, certs):
    exporter = secured({"tls_server_config": tls_section(certs)})
    reply = exporter.get("/metrics", verify=str(certs.ca))
    assert reply.status_code == 200 and "sollol_redis_up" in reply.text
    plain = requests.get(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5)  # Go's answer, not a silent close
    assert plain.status_code == 400 and "Client sent an HTTP request to an HTTPS server." in plain.text
    assert exporter.get("/-/healthy", verify=str(certs.ca)).status_code == 200  # the plain attempt broke nothing
    assert "Traceback" not in exporter.read_log()


def test_mtls_rejects_clients_without_a_certificate_or_with_one_from_another_ca(secured, certs):
    exporter = secured({"tls_server_config": tls_section(certs, client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(certs.ca))})
    assert exporter.get("/metrics", verify=str(certs.ca), cert=certs.client.requests_cert).status_code == 200
    for client_cert in (None, certs.stranger.requests_cert):
        with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
            exporter.get("/metrics", verify=str(certs.ca), cert=client_cert)
    assert exporter.get("/-/healthy", verify=str(certs.ca), cert=certs.client.requests_cert).status_code == 200


def test_tls_minimum_version_is_enforced(secured, certs):
    exporter = secured({"tls_server_config": tls_section(certs, min_version="TLS13")})
    old_client = ssl.create_default_context(cafile=str(certs.ca))
    old_client.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError), socket_to(exporter.port) as raw, old_client.wrap_socket(raw, server_hostname="127.0.0.1"):
        pass
    assert exporter.get("/-/healthy", verify=str(certs.ca)).status_code == 200


def socket_to(port):
    import socket

    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_basic_auth_with_bcrypt_users(secured, certs):
    hashed = bcrypt_hash("s3cret-pass")
    exporter = secured({"tls_server_config": tls_section(certs), "basic_auth_users": {"prometheus": hashed}})
    ca = str(certs.ca)
    for auth in (None, ("prometheus", "wrong"), ("nobody", "s3cret-pass"), ("prometheus", "x" * 100)):
        reply = exporter.get("/metrics", verify=ca, auth=auth)
        assert reply.status_code == 401, auth
        assert reply.headers["WWW-Authenticate"] == "Basic"
    assert exporter.get("/-/healthy", verify=ca).status_code == 401  # everything is behind auth, as in exporter-toolkit
    assert exporter.get("/", verify=ca).status_code == 401
    garbled = exporter.get("/metrics", verify=ca, headers={"Authorization": "Basic !!!not-base64"})
    assert garbled.status_code == 401
    for _ in range(3):  # verified once, then served from the cache
        reply = exporter.get("/metrics", verify=ca, auth=("prometheus", "s3cret-pass"))
        assert reply.status_code == 200 and "sollol_redis_up" in reply.text
    log = exporter.read_log()
    assert "s3cret-pass" not in log and hashed not in log and "Traceback" not in log


def test_basic_auth_without_tls_and_the_configured_headers(secured, certs):
    web = {"basic_auth_users": {"u": bcrypt_hash("p")},
           "http_server_config": {"headers": {"X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff",
                                              "Strict-Transport-Security": "max-age=31536000"}}}
    exporter = secured(web, scheme="http")
    for auth, status in ((None, 401), (("u", "p"), 200)):
        reply = exporter.get("/metrics", auth=auth)
        assert reply.status_code == status
        assert reply.headers["X-Frame-Options"] == "deny"
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_web_config_changes_apply_without_restart_and_a_bad_one_keeps_the_previous(secured, certs):
    from tests.support.net import wait_for
    from tests.support.tls import make_certificates

    exporter = secured({"tls_server_config": tls_section(certs), "basic_auth_users": {"alice": bcrypt_hash("one")}})
    ca = str(certs.ca)
    assert exporter.get("/-/healthy", verify=ca, auth=("alice", "one")).status_code == 200
    exporter.write_web_config({"tls_server_config": tls_section(certs), "basic_auth_users": {"bob": bcrypt_hash("two")}})
    wait_for(lambda: exporter.get("/-/healthy", verify=ca, auth=("bob", "two")).status_code == 200, 10, what="new users")
    assert exporter.get("/-/healthy", verify=ca, auth=("alice", "one")).status_code == 401

    exporter.write_web_config("basic_auth_users:\n  bob: not-a-hash\nsurprise: 1\n")
    for _ in range(5):
        assert exporter.get("/-/healthy", verify=ca, auth=("bob", "two")).status_code == 200
    log = exporter.read_log()
    assert log.count("web config reload failed") == 1, log
    assert "not-a-hash" not in log

    # new certificate files are served from the next handshake on
    fresh = make_certificates(exporter.workdir / "fresh")
    exporter.write_web_config({"tls_server_config": tls_section(fresh), "basic_auth_users": {"bob": bcrypt_hash("two")}})
    wait_for(lambda: _served_by(exporter, str(fresh.ca)), 10, what="new certificate")
    with pytest.raises(requests.exceptions.SSLError):
        exporter.get("/-/healthy", verify=ca, auth=("bob", "two"))


def _served_by(exporter, ca) -> bool:
    try:
        return exporter.get("/-/healthy", verify=ca, auth=("bob", "two")).status_code == 200
    except requests.exceptions.SSLError:
        return False


def test_sighup_reloads_the_web_config(secured, certs):
    import signal

    from tests.support.net import wait_for

    exporter = secured({"basic_auth_users": {"alice": bcrypt_hash("one")}}, scheme="http")
    exporter.write_web_config({"basic_auth_users": {"carol": bcrypt_hash("three")}})
    exporter.process.send_signal(signal.SIGHUP)
    wait_for(lambda: exporter.get("/-/healthy", auth=("carol", "three")).status_code == 200, 10, what="reload on SIGHUP")
    assert "web config reloaded" in exporter.read_log()


# POST /-/reload: Prometheus' lifecycle API, opt-in with --web.enable-lifecycle.

NODE = "127.0.0.1:9"
LIFECYCLE = ("--web.enable-lifecycle",)


def test_reload_endpoint_is_forbidden_without_the_lifecycle_flag(start_exporter, redis_db):
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False}))
    exporter.write_config(base_config(redis_db.url, ollama={"discover": False, "nodes": [NODE]}))
    reply = requests.post(exporter.url + "/-/reload", timeout=10)
    assert reply.status_code == 403 and reply.text.strip() == "Lifecycle API is not enabled."
    assert requests.put(exporter.url + "/-/reload", timeout=10).status_code == 403
    wrong = requests.get(exporter.url + "/-/reload", timeout=10)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST, PUT"
    assert value(exporter.scrape(), "sollol_ollama_node_up", node=NODE) is None  # nothing was reloaded


def test_reload_endpoint_applies_a_changed_config(start_exporter, redis_db):
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False}), extra_args=LIFECYCLE)
    assert value(exporter.scrape(), "sollol_ollama_node_up", node=NODE) is None
    exporter.write_config(base_config(redis_db.url, ollama={"discover": False, "nodes": [NODE]}))
    reply = requests.post(exporter.url + "/-/reload", timeout=10)
    assert reply.status_code == 200, reply.text
    samples = exporter.scrape()  # the reload is done when the answer comes: no waiting
    assert value(samples, "sollol_ollama_node_up", node=NODE) == 0
    assert value(samples, "sollol_exporter_config_last_reload_successful") == 1
    for method in ("GET", "HEAD", "DELETE"):
        assert requests.request(method, exporter.url + "/-/reload", timeout=10).status_code == 405, method
    assert "config reloaded" in exporter.read_log()


def test_reload_endpoint_with_a_bad_config_answers_500_and_keeps_the_old_one(start_exporter, redis_db):
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False, "nodes": [NODE]}), extra_args=LIFECYCLE)
    exporter.config_path.write_text("redis: {url: 'redis://:hunter2-secret@127.0.0.1:1/0', timout: 1s}\n")
    reply = requests.post(exporter.url + "/-/reload", timeout=10)
    assert reply.status_code == 500
    assert "hunter2" not in reply.text and "timout" not in reply.text and len(reply.text) < 200
    samples = exporter.scrape()
    assert value(samples, "sollol_exporter_config_last_reload_successful") == 0
    assert value(samples, "sollol_ollama_node_up", node=NODE) == 0  # the old config still serves
    assert value(samples, "sollol_redis_up") == 1  # still the old Redis, not the broken file's
    assert "timout" in exporter.read_log()
    exporter.write_config(base_config(redis_db.url, ollama={"discover": False}))
    assert requests.post(exporter.url + "/-/reload", timeout=10).status_code == 200
    samples = exporter.scrape()
    assert value(samples, "sollol_exporter_config_last_reload_successful") == 1
    assert value(samples, "sollol_ollama_node_up", node=NODE) is None


def test_reload_endpoint_is_behind_basic_auth_and_reloads_the_web_config_too(secured):
    exporter = secured({"basic_auth_users": {"alice": bcrypt_hash("one")}}, scheme="http", extra_args=LIFECYCLE)
    url = exporter.url + "/-/reload"
    for auth in (None, ("alice", "wrong")):
        reply = requests.post(url, auth=auth, timeout=10)
        assert reply.status_code == 401 and reply.headers["WWW-Authenticate"] == "Basic"
    assert requests.get(url, timeout=10).status_code == 401  # auth comes before anything else
    assert requests.post(url, auth=("alice", "one"), timeout=10).status_code == 200
    exporter.write_web_config("basic_auth_users:\n  alice: not-a-hash\n")
    reply = requests.post(url, auth=("alice", "one"), timeout=10)
    assert reply.status_code == 500 and "not-a-hash" not in reply.text
    assert exporter.get("/-/healthy", auth=("alice", "one")).status_code == 200  # the previous web config serves


# -- flags Prometheus users know: --web.telemetry-path, --web.disable-exporter-metrics, --[no-]collector.<name> ------

RUNTIME_PREFIXES = ("process_", "python_gc_", "python_info")


def family_names(samples) -> set[str]:
    return {name for name, _ in samples}


def test_telemetry_path_moves_the_metrics_and_the_landing_page_links_there(start_exporter, redis_db):
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False}),
                              extra_args=("--web.telemetry-path", "/sollol/metrics"))
    moved = requests.get(exporter.url + "/sollol/metrics", timeout=30)
    assert moved.status_code == 200 and value(parse(moved.text), "sollol_redis_up") == 1
    assert requests.get(exporter.url + "/metrics", timeout=10).status_code == 404
    assert requests.get(exporter.url + "/sollol/metrics?x=1", timeout=30).status_code == 200  # the query is not the path
    page = requests.get(exporter.url + "/", timeout=10).text
    assert 'href="/sollol/metrics"' in page and 'href="/metrics"' not in page
    assert requests.get(exporter.url + "/-/healthy", timeout=10).status_code == 200


def test_max_requests_limits_the_moved_telemetry_path(start_exporter, redis_db):
    slow = ReplayServer({"/health": Route({"status": "ok"}, delay=1.5)})
    try:
        exporter = start_exporter(base_config(redis_db.url, coordinators=[{"url": slow.url, "name": "slow", "timeout": "5s"}],
                                              ollama={"discover": False}),
                                  extra_args=("--web.telemetry-path", "/m", "--web.max-requests", "1"))
        statuses = []

        def scrape():
            statuses.append(requests.get(exporter.url + "/m", timeout=20).status_code)

        threads = [threading.Thread(target=scrape) for _ in range(3)]
        for thread in threads:
            thread.start()
            time.sleep(0.1)
        for thread in threads:
            thread.join(30)
        assert sorted(statuses)[0] == 200 and 503 in statuses, statuses
        assert requests.get(exporter.url + "/-/healthy", timeout=10).status_code == 200
    finally:
        slow.stop()


def test_disable_exporter_metrics_leaves_out_the_process_metrics_only(start_exporter, redis_db):
    config = base_config(redis_db.url, ollama={"discover": False})
    default = family_names(start_exporter(config).scrape())
    for prefix in RUNTIME_PREFIXES:
        assert any(name.startswith(prefix) for name in default), prefix  # they are there by default, so the flag matters
    trimmed = family_names(start_exporter(config, extra_args=("--web.disable-exporter-metrics",)).scrape())
    assert not [name for name in trimmed if name.startswith(RUNTIME_PREFIXES)], trimmed
    for kept in ("sollol_exporter_build_info", "sollol_exporter_collector_success", "sollol_exporter_scrape_timeout_seconds",
                 "sollol_exporter_config_last_reload_successful", "sollol_redis_up"):
        assert kept in trimmed, kept


def test_disabled_collectors_are_neither_rendered_nor_listed_also_after_a_reload(start_exporter, redis_db, ollama):
    import json

    from tests.fixtures.sollol import GPU

    redis_db.client.set("sollol:gpu:10.0.0.5:11434", json.dumps(dict(GPU, timestamp=time.time())))
    config = base_config(redis_db.url, ollama={"discover": False, "nodes": [ollama.address]})
    enabled = start_exporter(config).scrape()
    assert value(enabled, "sollol_exporter_collector_success", collector="gpu") == 1
    assert any(name.startswith("sollol_gpu_") for name in family_names(enabled))
    assert any(name.startswith("sollol_ollama_") for name in family_names(enabled))

    off = ("gpu", "ollama", "routing")
    exporter = start_exporter(config, extra_args=(*[f"--no-collector.{name}" for name in off], "--web.enable-lifecycle"))

    def check(samples):
        names = family_names(samples)
        for prefix in ("sollol_gpu_", "sollol_ollama_", "sollol_routing_"):
            assert not [name for name in names if name.startswith(prefix)], prefix
        listed = {dict(labels)["collector"] for labels in series(samples, "sollol_exporter_collector_success")}
        assert listed and not listed & set(off), listed
        assert {"redis", "metadata", "rpc_nodes", "coordinator", "rpc_backends", "events"} <= listed, listed
        for family in ("sollol_exporter_collector_duration_seconds", "sollol_exporter_invalid_entries", "sollol_exporter_dropped_entries"):
            assert not {dict(labels)["collector"] for labels in series(samples, family)} & set(off), family
        assert value(samples, "sollol_redis_up") == 1

    check(exporter.scrape())
    page = requests.get(exporter.url + "/", timeout=10).text
    assert "Collectors turned off: gpu, ollama, routing." in page
    exporter.write_config(base_config(redis_db.url, ollama={"discover": False, "nodes": [ollama.address]}, scrape={"timeout": "9s"}))
    assert requests.post(exporter.url + "/-/reload", timeout=10).status_code == 200
    check(exporter.scrape())  # a reload keeps the command line's choice
    exporter.reload()  # SIGHUP too
    wait_for_log(exporter, "config reloaded", 2)
    check(exporter.scrape())


def wait_for_log(exporter, text: str, count: int) -> None:
    from tests.support.net import wait_for

    wait_for(lambda: exporter.read_log().count(text) >= count, 10, what=f"{count} x {text!r} in the log")


# -- the landing page says what to set for a part it did not find --------------------------------------------------

HINTS = {
    "redis": "Redis: nothing answers at",
    "coordinator": "llama.cpp coordinator: nothing answers at",
    "workers": "RPC workers: none found",
    "ollama": "Ollama nodes: none found",
    "dashboard": "SOLLOL dashboard: nothing answers at",
}


def hints_on(exporter) -> list[str]:
    import html
    import re

    page = requests.get(exporter.url + "/", timeout=10).text
    found = re.search(r'<ul id="setup-hints">(.*?)</ul>', page, re.S)
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", found.group(1))] if found else []


def test_landing_page_says_what_to_set_when_nothing_is_found(start_exporter, redis_db):
    from tests.support.net import free_port

    closed = free_port()  # bound and released: nothing listens there
    # no config file: the parts are only where the variables say they would be, so absent, not down
    exporter = start_exporter(None, env={"SOLLOL_REDIS_URL": f"redis://:hunter2-secret@127.0.0.1:{closed}/0",
                                         "SOLLOL_COORDINATOR_HOST": "127.0.0.1", "SOLLOL_COORDINATOR_PORT": str(closed),
                                         "SOLLOL_DASHBOARD_HOST": "127.0.0.1", "SOLLOL_DASHBOARD_PORT": str(closed)})
    assert hints_on(exporter) == []  # nothing is known before the first scrape
    exporter.scrape()
    lines = hints_on(exporter)
    by = {key: [line for line in lines if line.startswith(start)] for key, start in HINTS.items()}
    assert len(lines) == len(HINTS) and all(len(found) == 1 for found in by.values()), lines  # one line per part
    by = {key: found[0] for key, found in by.items()}
    assert f"127.0.0.1:{closed}" in by["redis"] and "SOLLOL_REDIS_URL" in by["redis"] and "redis.url" in by["redis"]
    assert "--config.file" in by["redis"]
    assert f"http://127.0.0.1:{closed}" in by["coordinator"]
    assert "SOLLOL_COORDINATOR_HOST" in by["coordinator"] and "SOLLOL_COORDINATOR_PORT" in by["coordinator"]
    assert "coordinators:" in by["coordinator"]
    assert "sollol:rpc:node:" in by["workers"] and "rpc_backends.static" in by["workers"]
    assert "sollol:router:metadata" in by["ollama"] and "ollama.nodes" in by["ollama"]
    assert "SOLLOL_DASHBOARD_HOST" in by["dashboard"] and "dashboard.url" in by["dashboard"]
    assert "dashboard.enabled: false" in by["dashboard"] and "coordinators: []" in by["coordinator"]
    page = requests.get(exporter.url + "/", timeout=10).text
    assert "hunter2" not in page and "<secret>" in "".join(lines)
    assert "&lt;secret&gt;" in page  # escaped


def test_landing_page_has_no_line_for_what_the_file_names(start_exporter, redis_db):
    """A part the config file names is expected: when it does not answer, that is an outage (its up series is 0 and
    an alert fires), not a setup question."""
    from tests.support.net import free_port

    closed = free_port()
    exporter = start_exporter(base_config(f"redis://127.0.0.1:{closed}/0", coordinators=[{"url": f"http://127.0.0.1:{closed}", "name": "main"}],
                                          dashboard={"enabled": True, "url": f"http://127.0.0.1:{closed}"}))
    samples = exporter.scrape()
    assert value(samples, "sollol_redis_up") == 0 and value(samples, "sollol_coordinator_up", coordinator="main") == 0
    assert not [line for line in hints_on(exporter) if line.startswith((HINTS["redis"], HINTS["coordinator"], HINTS["dashboard"]))]


def test_landing_page_lines_go_for_the_parts_that_are_found(start_exporter, redis_db, ollama, dashboard):
    coordinator = ReplayServer({"/health": Route({"status": "ok"}), "/metrics": Route("", content_type="text/plain"),
                                "/props": Route({"build_info": "b4748-c392e5094", "total_slots": 1})})
    try:
        config = base_config(redis_db.url, ollama={"discover": False})
        exporter = start_exporter(config, extra_args=("--web.enable-lifecycle",))
        exporter.scrape()
        lines = hints_on(exporter)
        assert not [line for line in lines if line.startswith(HINTS["workers"])]  # coordinators: []: no llama.cpp
        assert [line for line in lines if line.startswith(HINTS["ollama"])]
        assert "discovery is off (ollama.discover)" in "".join(lines)
        assert not [line for line in lines if line.startswith(HINTS["redis"])]  # Redis answers
        # coordinators: [] and dashboard.enabled: false are choices, not something missing
        assert not [line for line in lines if line.startswith((HINTS["coordinator"], HINTS["dashboard"]))]

        exporter.write_config(base_config(redis_db.url, coordinators=[{"url": coordinator.url, "name": "main"}],
                                          rpc_backends={"static": [{"address": "127.0.0.1:9"}]},
                                          ollama={"discover": False, "nodes": [ollama.address]},
                                          dashboard={"enabled": True, "url": dashboard.url}))
        assert requests.post(exporter.url + "/-/reload", timeout=10).status_code == 200
        exporter.scrape()
        assert hints_on(exporter) == []
        assert "Not found" not in requests.get(exporter.url + "/", timeout=10).text
    finally:
        coordinator.stop()


def test_landing_page_has_no_line_for_a_turned_off_collector(start_exporter, redis_db):
    exporter = start_exporter(base_config(redis_db.url, ollama={"discover": False}),
                              extra_args=("--no-collector.ollama", "--no-collector.rpc_backends"))
    exporter.scrape()
    assert hints_on(exporter) == []
