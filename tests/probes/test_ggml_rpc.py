"""The ggml handshake against real rpc-server workers, idle and held by a real llama-server, and the hazard suite:
probing a busy worker must leave the worker alive, the coordinator answering and its next start-up on time."""

from __future__ import annotations

import re
import signal
import socket
import struct
import threading
import time

import pytest

from sollol_exporter.addresses import Address
from sollol_exporter.probes import ERROR, REFUSED, Target, ggml_rpc
from tests.support import llama

pytestmark = pytest.mark.llama
LOOP = "127.0.0.1"
MIB = 1_048_576


def start_coordinator(model, workers, tmp_path, **kwargs):
    return llama.start_llama_server(model, rpc=[(LOOP, w.port) for w in workers], log_dir=tmp_path, **kwargs)


def test_handshake_reports_what_the_worker_prints_at_start(workers):
    worker = workers[0]
    result = ggml_rpc.probe_one(Address(LOOP, worker.port), 2.0)
    assert result.outcome == "ok", result
    assert result.version == llama.rpc_banner_version(worker)
    banner = re.search(r"\((\d+) MiB, (\d+) MiB free\)", worker.read_log())
    assert len(result.devices) == 1
    free, total = result.devices[0]
    assert total // MIB == int(banner.group(1))
    assert abs(free // MIB - int(banner.group(2))) < 512  # live figure; the banner is from start-up


def test_handshake_against_a_closed_port_is_refused():
    assert ggml_rpc.probe_one(Address(LOOP, llama.free_port()), 1.0).outcome == REFUSED


def test_protocol_of_a_build_and_skew():
    assert ggml_rpc.protocol_for_build("b4748-c392e5094") == (0, 0, 0)
    assert ggml_rpc.protocol_for_build("b10587-3f545becc") == (5, 1, 0)
    assert ggml_rpc.protocol_for_build("b0-unknown") is None
    assert ggml_rpc.incompatible((5, 1, 0), (7, 0, 0))
    assert not ggml_rpc.incompatible((5, 1, 0), (5, 0, 0))
    assert ggml_rpc.incompatible((5, 0, 0), (5, 1, 0))


@pytest.fixture(scope="module")
def baseline_start(tiny_model, tmp_path_factory):
    """How long a coordinator takes to become ready when nobody probes its workers."""
    tmp = tmp_path_factory.mktemp("baseline")
    workers = [llama.start_rpc_server(log_dir=tmp) for _ in range(2)]
    try:
        timings = []
        for _ in range(2):
            started = time.monotonic()
            proc = start_coordinator(tiny_model, workers, tmp)
            timings.append(time.monotonic() - started)
            proc.stop()
        return min(timings)
    finally:
        for worker in workers:
            worker.stop()


@pytest.mark.parametrize("round_", range(3))
def test_probing_busy_workers_harms_nothing(tmp_path, tiny_model, workers, baseline_start, round_):
    coordinator = start_coordinator(tiny_model, workers, tmp_path)
    try:
        assert llama.chat(coordinator.port, "before", max_tokens=2)["choices"]
        for worker in workers:
            result = ggml_rpc.probe_one(Address(LOOP, worker.port), 1.0)
            assert result.outcome == ggml_rpc.BUSY, result
            assert "RST" in result.detail
        assert llama.chat(coordinator.port, "during", max_tokens=2)["choices"]
    finally:
        coordinator.stop()
    time.sleep(0.5)  # the workers now drain the aborted probes from their accept queues
    assert all(worker.alive() for worker in workers), [w.log_tail() for w in workers]
    started = time.monotonic()
    coordinator = start_coordinator(tiny_model, workers, tmp_path)
    try:
        assert time.monotonic() - started < baseline_start + 1.0
        assert llama.chat(coordinator.port, "after", max_tokens=2)["choices"]
        assert all(worker.alive() for worker in workers)
    finally:
        coordinator.stop()


def test_control_a_graceful_close_after_hello_kills_the_worker(tmp_path, tiny_model, workers):
    """Why the probe aborts with RST: the same request closed normally kills the worker (SIGPIPE) once the
    coordinator lets go. If this ever stops failing the worker, upstream fixed the hazard."""
    coordinator = start_coordinator(tiny_model, workers, tmp_path)
    victim = workers[1]
    try:
        sock = socket.create_connection((LOOP, victim.port), timeout=2)
        sock.sendall(struct.pack("<BQ", 14, 24) + bytes(24))
        sock.settimeout(1.0)
        with pytest.raises(socket.timeout):
            sock.recv(8)
        sock.close()
    finally:
        coordinator.stop()
    llama.wait_for(lambda: not victim.alive(), timeout=5, what="worker death by SIGPIPE")
    assert victim.returncode == -signal.SIGPIPE


def test_a_worker_that_closes_silently_then_refuses_is_a_protocol_error_not_a_crash():
    """A silent close after HELLO makes the prober ask again the old way; if that connect is refused, the result
    says so (it aborted the closed socket again, and the EBADF escaped as a prober bug)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def close_then_stop():
        conn, _ = listener.accept()
        conn.recv(64)
        listener.close()  # nobody listens any more when the prober reconnects
        conn.close()

    thread = threading.Thread(target=close_then_stop, daemon=True)
    thread.start()
    result = ggml_rpc.probe_all([Target(Address("127.0.0.1", port))], 2.0, time.monotonic() + 3)[Target(Address("127.0.0.1", port))]
    thread.join(5)
    assert result.outcome == ERROR, result
    assert "internal error" not in result.detail
