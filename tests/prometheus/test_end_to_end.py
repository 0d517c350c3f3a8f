"""From a dead worker to a notification: real llama.cpp coordinator and workers, the real exporter, redis-server,
Prometheus and Alertmanager, and a webhook receiver, all on loopback."""

from __future__ import annotations

import signal
import time

import pytest

from mixin.config import Config
from tests.support import llama
from tests.support.collect import base_config
from tests.support.exporter import ExporterProcess
from tests.support.net import wait_for
from tests.support.prometheus_stack import Alertmanager, Prometheus
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.llama
LOOP = "127.0.0.1"


def test_a_killed_worker_pages_once_and_resolves_when_it_is_back(tmp_path, redis_db, tiny_model):
    started = []
    try:
        workers = [llama.start_rpc_server(log_dir=tmp_path) for _ in range(2)]
        started += workers
        coordinator = llama.start_llama_server(tiny_model, rpc=[(LOOP, w.port) for w in workers], log_dir=tmp_path)
        started.append(coordinator)
        config = base_config(
            redis_db.url,
            coordinators=[{"url": f"http://{LOOP}:{coordinator.port}", "name": "main", "rpc_backends": [f"{LOOP}:{w.port}" for w in workers]}],
            rpc_backends={"discover": False, "timeout": "500ms"},
            ollama={"discover": False},
        )
        exporter = ExporterProcess(config, tmp_path)
        started.append(exporter)
        receiver = WebhookReceiver()
        manager = Alertmanager(tmp_path, receiver.url)
        started += [manager, receiver]
        prometheus = Prometheus(tmp_path, f"{LOOP}:{exporter.port}", f"{LOOP}:{manager.port}")
        started.append(prometheus)

        wait_for(lambda: prometheus.query('up{job="sollol"} == 1'), 30, what="first scrape")
        wait_for(lambda: receiver.matching("/watchdog", "firing", alertname="SollolWatchdog"), 30, what="watchdog")
        # workers held by a healthy coordinator (reachable, then busy) must not page, even past the `for:` window
        time.sleep(8)
        assert receiver.matching("/alerts", "firing", alertname="SollolRpcBackendDown") == []
        assert prometheus.query('sollol_rpc_backend_up == 0') == []

        victim = workers[1]
        backend = f"{LOOP}:{victim.port}"
        victim.stop(signal.SIGKILL)
        wait_for(lambda: receiver.matching("/alerts", "firing", alertname="SollolRpcBackendDown", backend=backend), 60,
                 what="firing notification")
        time.sleep(6)  # several evaluation and group intervals: nothing more may arrive for this worker
        firing = receiver.matching("/alerts", "firing", alertname="SollolRpcBackendDown", backend=backend)
        assert len(firing) == 1, firing
        alert = next(a for a in firing[0]["alerts"] if a["labels"]["backend"] == backend)
        assert alert["labels"] == {"alertname": "SollolRpcBackendDown", "severity": "critical", "cluster": "sollol",
                                   "instance": f"{LOOP}:{exporter.port}", "backend": backend, "coordinator": "main"}
        assert "(state refused)" in alert["annotations"]["description"]
        assert alert["annotations"]["runbook_url"] == Config().runbook("SollolRpcBackendDown")
        others = [m for m in receiver.matching("/alerts", "firing") if m not in firing]
        assert others == [], others

        revived = llama.start_rpc_server(victim.port, log_dir=tmp_path)
        started.append(revived)
        wait_for(lambda: receiver.matching("/alerts", "resolved", alertname="SollolRpcBackendDown", backend=backend), 60,
                 what="resolved notification")
    finally:
        for item in reversed(started):
            item.stop()
