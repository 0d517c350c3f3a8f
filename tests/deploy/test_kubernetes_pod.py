"""The example overlay's pod, run for real: the exporter started with the Deployment's args and environment, its
ConfigMaps and Secrets written where the volumes mount them (under a temporary root instead of /), a certificate
for the ServiceMonitor's serverName in the TLS Secret. The tcpSocket probe connects; without credentials every
path answers 401; Prometheus, as the ServiceMonitor configures it (CA, serverName, basic auth from its Secret),
scrapes /metrics."""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import trustme
import yaml

from tests.deploy.test_kubernetes import KUBE, kustomize
from tests.support.net import free_port, stop_process, wait_for

PREFIX = "/etc/sollol-exporter"
LOOP = "127.0.0.1"


def decoded(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}


def test_the_example_pod_serves_prometheus_as_its_service_monitor_scrapes(tmp_path):
    objects = kustomize(KUBE / "overlays" / "example")

    def find(kind: str, name: str | None = None) -> dict:
        return next(o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"]))

    pod = find("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (endpoint,) = find("ServiceMonitor")["spec"]["endpoints"]
    server_name = endpoint["tlsConfig"]["serverName"]
    root = tmp_path / "root"
    relocate = lambda text: text.replace(PREFIX, str(root) + PREFIX)  # noqa: E731

    ca = trustme.CA()
    issued = ca.issue_cert(server_name)
    tls_secret = {"tls.crt": issued.cert_chain_pems[0].bytes().decode(), "tls.key": issued.private_key_pem.bytes().decode(),
                  "ca.crt": ca.cert_pem.bytes().decode()}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:  # scratch space (/tmp): nothing to write, and the test's own /tmp stands in
            continue
        assert mount["mountPath"].startswith(PREFIX + "/")
        if "configMap" in volume:
            files = find("ConfigMap", volume["configMap"]["name"])["data"]
        elif volume["secret"]["secretName"] == endpoint["tlsConfig"]["ca"]["secret"]["name"]:
            files = tls_secret
        else:
            files = decoded(find("Secret", volume["secret"]["secretName"]))
        directory = root / mount["mountPath"].lstrip("/")
        directory.mkdir(parents=True)
        for name, text in files.items():
            (directory / name).write_text(relocate(text))

    port = free_port()
    args = [relocate(a) for a in container["args"] if not a.startswith("--web.listen-address")]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SOLLOL_")}
    (env_from,) = container["envFrom"]
    environment.update(find("ConfigMap", env_from["configMapRef"]["name"])["data"])
    for env in container["env"]:
        ref = env["valueFrom"]["secretKeyRef"]
        environment[env["name"]] = decoded(find("Secret", ref["name"]))[ref["key"]]
    log_path = tmp_path / "exporter.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "sollol_exporter", *args, f"--web.listen-address={LOOP}:{port}"],
                                   stdout=log, stderr=subprocess.STDOUT, env=environment)
    try:
        def probe() -> bool:  # the tcpSocket probe
            assert process.poll() is None, log_path.read_text()
            try:
                socket.create_connection((LOOP, port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(probe, 20, what="exporter start")
        trust = ssl.create_default_context(cadata=tls_secret["ca.crt"])  # tlsConfig.ca

        def get(path: str, headers: dict) -> tuple[int, str]:
            connection = http.client.HTTPConnection(LOOP, port, timeout=20)
            connection.sock = trust.wrap_socket(socket.create_connection((LOOP, port), timeout=20), server_hostname=server_name)
            connection.request("GET", path, headers=headers)
            reply = connection.getresponse()
            body = reply.read().decode()
            connection.close()
            return reply.status, body

        assert get("/-/healthy", {})[0] == 401
        auth = find("Secret", endpoint["basicAuth"]["username"]["name"])
        basic = endpoint["basicAuth"]
        user, password = decoded(auth)[basic["username"]["key"]], decoded(auth)[basic["password"]["key"]]
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        status, body = get("/metrics", {"Authorization": f"Basic {token}", "X-Prometheus-Scrape-Timeout-Seconds": "3"})
        # the example's Redis does not answer here and the Secret is an environment variable: absent, not down
        assert status == 200 and 'sollol_exporter_target_expected{kind="redis"' in body and "sollol_redis_up" not in body
        config_path = next(a.split("=", 1)[1] for a in args if a.startswith("--config.file="))
        names = {c["name"] for c in yaml.safe_load(Path(config_path).read_text())["coordinators"]}
        assert all(f'coordinator="{name}"' in body for name in names)  # the mounted config file is the one in force
        logged = log_path.read_text()
        assert password not in logged and environment["SOLLOL_REDIS_URL"] not in logged and "Traceback" not in logged
    finally:
        stop_process(process)
