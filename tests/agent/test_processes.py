"""The agent's process lookup: which process listens on a port, from a /proc tree (here one written for the test,
shaped as the kernel's)."""

import os
from pathlib import Path

from sollol_exporter.agent.processes import rpc_server_listening

PORT = 50052
INODE = 424242
HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def fake_proc(root: Path, exe: str, argv0: str, comm: str, listening: bool = True) -> Path:
    proc = root / "proc"
    (proc / "net").mkdir(parents=True)
    state = "0A" if listening else "01"
    line = f"   0: 0100007F:{PORT:04X} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000  1000        0 {INODE} 1\n"
    (proc / "net" / "tcp").write_text(HEADER + line)
    (proc / "net" / "tcp6").write_text(HEADER)
    process = proc / "4321"
    (process / "fd").mkdir(parents=True)
    os.symlink(f"socket:[{INODE}]", process / "fd" / "3")
    os.symlink(exe, process / "exe")
    (process / "cmdline").write_bytes(argv0.encode() + b"\0--port\0" + str(PORT).encode() + b"\0")
    (process / "comm").write_text(comm + "\n")
    return proc


def test_rpc_server_started_through_a_symlink_is_recognised_by_the_name_it_was_started_by(tmp_path):
    proc = fake_proc(tmp_path, "/opt/llama.cpp/build/bin/llama-rpc-b5269", "/usr/local/bin/rpc-server", "llama-rpc-b5269")
    assert rpc_server_listening(PORT, proc) == (True, "rpc-server listening")


def test_either_binary_name_is_an_rpc_server(tmp_path):
    proc = fake_proc(tmp_path, "/usr/lib/ggml-rpc-server", "ggml-rpc-server", "ggml-rpc-server")
    assert rpc_server_listening(PORT, proc)[0]


def test_another_program_on_the_port_is_named(tmp_path):
    proc = fake_proc(tmp_path, "/usr/bin/python3.11", "python3", "python3")
    assert rpc_server_listening(PORT, proc) == (False, "port held by python3, python3.11")


def test_nothing_listening_is_said(tmp_path):
    proc = fake_proc(tmp_path, "/usr/bin/rpc-server", "rpc-server", "rpc-server", listening=False)
    assert rpc_server_listening(PORT, proc) == (False, "nothing listens on the port")
