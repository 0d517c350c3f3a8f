"""Smoke check of tests/support/llama.py against the real binaries. Run as a script, not collected by pytest.

    python tests/support/smoke_llama.py [--big-mib N] [--skip-big] [--keep]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout, for the tests package

from tests.support import llama


def pgrep(pattern: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(Path(__file__).name) not in line]


def show_timeline(label: str, timeline: list[tuple[float, int | None]]) -> None:
    print(f"  {label}: " + ", ".join(f"{t:.2f}s->{s}" for t, s in timeline))
    first_503 = next((t for t, s in timeline if s == 503), None)
    first_200 = next((t for t, s in timeline if s == 200), None)
    if first_503 is not None and first_200 is not None:
        print(f"  {label}: 503 window ~{first_200 - first_503:.2f}s, ready at {first_200:.2f}s")
    elif first_200 is not None:
        print(f"  {label}: no 503 seen, ready at {first_200:.2f}s")


def small_cluster(work: Path, logs: Path) -> None:
    t = time.monotonic()
    model = llama.write_tiny_model(work / "tiny.gguf")
    print(f"tiny model: {model.stat().st_size} bytes in {time.monotonic() - t:.2f}s")

    with llama.start_rpc_server(log_dir=logs) as w1, llama.start_rpc_server(log_dir=logs) as w2:
        print(f"workers: {w1} {w2}")
        print(f"  listen_queue {w1.port}: {llama.listen_queue(w1.port)}")
        t = time.monotonic()
        srv = llama.start_llama_server(
            model, rpc=[(llama.LOOPBACK, w1.port), (llama.LOOPBACK, w2.port)], log_dir=logs, wait=None
        )
        with srv:
            show_timeline("tiny+2 workers", llama.health_timeline(srv.port, proc=srv, timeout=120))
            print(f"  ready after {time.monotonic() - t:.2f}s")
            out = llama.complete(srv.port, "hello world", n_predict=8)
            print(f"  /completion: tokens_predicted={out.get('tokens_predicted')} content={out.get('content')!r}")
            chat = llama.chat(srv.port, "hi", max_tokens=4)
            print(f"  /v1/chat/completions: finish={chat['choices'][0]['finish_reason']} "
                  f"fingerprint={chat.get('system_fingerprint')}")
            series = llama.metrics(srv.port)
            names = sorted({k.split("{")[0] for k in series})
            print(f"  /metrics {len(names)} series: {', '.join(n.removeprefix('llamacpp:') for n in names)}")
            props = llama.get_json(srv.port, "/props")
            print(f"  /props build_info={props.get('build_info')!r} total_slots={props.get('total_slots')}")
            for w in (w1, w2):
                held = llama.connections(srv.pid, remote_port=w.port)
                print(f"  coordinator -> worker {w.port}: {len(held)} established; "
                      f"worker peers {llama.established_peers(w.port)}; listen_queue {llama.listen_queue(w.port)}")
                assert len(held) == 1, held
            print(f"  llama-server stop -> rc {srv.stop()}")
        for w in (w1, w2):
            print(f"  worker {w.port} RPC version: {llama.rpc_banner_version(w)}; alive after coordinator exit: {w.alive()}")
    print(f"  workers rc: {w1.returncode} {w2.returncode}")


def big_loads(work: Path, logs: Path, mib: int | None) -> None:
    params = dict(llama.SLOW_LOAD) if mib is None else {"n_layers": 8, "padding_bytes": mib << 20}
    t = time.monotonic()
    model = llama.write_tiny_model(work / "big.gguf", **params)
    print(f"big model {params}: {model.stat().st_size / 2**20:.0f} MiB "
          f"({model.stat().st_blocks * 512 / 2**20:.1f} MiB on disk) written in {time.monotonic() - t:.2f}s")

    for label in ("2 workers, first load", "2 workers, repeat load"):
        with llama.start_rpc_server(log_dir=logs) as w1, llama.start_rpc_server(log_dir=logs) as w2:
            srv = llama.start_llama_server(
                model, rpc=[(llama.LOOPBACK, w1.port), (llama.LOOPBACK, w2.port)], log_dir=logs, wait=None
            )
            with srv:
                show_timeline(label, llama.health_timeline(srv.port, proc=srv, timeout=300))
                out = llama.complete(srv.port, "hi", n_predict=2)
                print(f"  {label}: completion ok, {out.get('tokens_predicted')} tokens")

    srv = llama.start_llama_server(model, n_gpu_layers=0, log_dir=logs, wait=None)
    with srv:
        show_timeline("cpu only (mmap)", llama.health_timeline(srv.port, proc=srv, timeout=180))


def held_worker(work: Path, logs: Path) -> None:
    model = llama.write_tiny_model(work / "tiny-held.gguf")
    with llama.start_rpc_server(log_dir=logs) as w1, llama.start_rpc_server(log_dir=logs) as w2:
        holder = socket.create_connection((llama.LOOPBACK, w2.port))
        srv = llama.start_llama_server(
            model, rpc=[(llama.LOOPBACK, w1.port), (llama.LOOPBACK, w2.port)], log_dir=logs, wait=None
        )
        with srv:
            time.sleep(3)
            print(f"held worker: after 3s /health={llama.health(srv.port)} "
                  f"http listening={llama.listening(srv.port)} worker listen_queue={llama.listen_queue(w2.port)}")
            holder.close()
            released = time.monotonic()
            srv.wait_until(lambda: llama.health(srv.port) == 200, timeout=30, what="ready")
            print(f"  ready {time.monotonic() - released:.2f}s after the holder closed")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mib", type=int, default=None, help="padding in MiB (default: llama.SLOW_LOAD)")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    print(f"llama-server: {llama.binary('llama-server')}")
    print(f"rpc worker:   {llama.binary('rpc-server')}")
    print(f"build_info.json: {json.dumps(llama.build_info())}")
    work = Path(tempfile.mkdtemp(prefix="smoke-llama-"))
    logs = work / "logs"
    try:
        small_cluster(work, logs)
        held_worker(work, logs)
        if not args.skip_big:
            big_loads(work, logs, args.big_mib)
    finally:
        llama.stop_all()
        leftovers = pgrep("llama-server") + pgrep("rpc-server")
        print(f"leftover processes: {leftovers or 'none'}")
        print(f"logs in {logs}" if args.keep else "")
        if not args.keep:
            for f in sorted(work.rglob("*"), reverse=True):
                f.unlink() if f.is_file() else f.rmdir()
            work.rmdir()
    return 1 if leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
