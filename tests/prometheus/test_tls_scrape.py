"""The real Prometheus scrapes the exporter over TLS with a client certificate and basic auth (the web config in
exporter-toolkit format); a job with the wrong password is refused."""

from __future__ import annotations

import requests

from tests.support.collect import base_config
from tests.support.net import free_port, wait_for
from tests.support.prometheus_stack import Prometheus
from tests.support.tls import SecuredExporter, bcrypt_hash, make_certificates, tls_section

LOOP = "127.0.0.1"


class TLSPrometheus(Prometheus):
    def __init__(self, workdir, exporter_port: int, certs, password: str):
        self.port = free_port()
        tls = {"ca_file": str(certs.ca), "cert_file": str(certs.client.cert), "key_file": str(certs.client.key)}
        jobs = [{"job_name": name, "scheme": "https", "tls_config": tls,
                 "basic_auth": {"username": "prometheus", "password": secret},
                 "static_configs": [{"targets": [f"{LOOP}:{exporter_port}"]}]}
                for name, secret in (("sollol", password), ("wrong-password", password + "x"))]
        self._launch(workdir, {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": jobs})


def test_prometheus_scrapes_through_tls_client_certificates_and_basic_auth(tmp_path, redis_db):
    certs = make_certificates(tmp_path / "certs")
    password = "scrape-secret"
    web = {"tls_server_config": tls_section(certs, client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(certs.ca)),
           "basic_auth_users": {"prometheus": bcrypt_hash(password)}}
    exporter = SecuredExporter(base_config(redis_db.url, ollama={"discover": False}), web, tmp_path)
    prometheus = None
    try:
        prometheus = TLSPrometheus(tmp_path, exporter.port, certs, password)
        up = wait_for(lambda: prometheus.query('up{job="sollol"} == 1'), 30, what="a successful TLS scrape")
        assert up[0]["metric"]["instance"] == f"{LOOP}:{exporter.port}"
        assert wait_for(lambda: prometheus.query('sollol_redis_up{job="sollol"} == 1'), 10, what="exporter series")
        refused = wait_for(lambda: prometheus.query('up{job="wrong-password"}'), 30, what="the wrong-password job")
        assert refused[0]["value"][1] == "0"
        targets = requests.get(prometheus.url + "/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        wrong = next(t for t in targets if t["labels"]["job"] == "wrong-password")
        assert "401" in wrong["lastError"], wrong
        assert password not in exporter.read_log()
    finally:
        if prometheus is not None:
            prometheus.stop()
        exporter.stop()
