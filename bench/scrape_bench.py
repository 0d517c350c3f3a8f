#!/usr/bin/env python3
"""Scrape cost with many RPC backends: wall time per scrape, exporter CPU and RSS.

For 10, 100 and 1,000 workers on loopback, 10% of them blackholed (a listener whose accept queue is full, so
connects time out exactly like a busy or unreachable rpc-server), the real exporter is started with those
workers as static backends and scraped several times. Prints a table; the target is that 1,000 backends
finish within the probe timeout + 0.3 s.

    .venv/bin/python bench/scrape_bench.py [--sizes 10,100,1000] [--scrapes 5] [--probe-timeout 1.0]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.net import close_listener, free_port, full_listener  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run(size: int, scrapes: int, probe_timeout: float, workdir: Path) -> dict:
    blackholed = size // 10
    listeners, addresses = [], []
    for _ in range(size - blackholed):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listeners.append(listener)
        addresses.append(f"127.0.0.1:{listener.getsockname()[1]}")
    holes = [full_listener() for _ in range(blackholed)]
    addresses += [f"127.0.0.1:{port}" for _, port in holes]
    config = {
        "redis": {"url": f"redis://127.0.0.1:{free_port()}/0", "timeout": "200ms"},
        "coordinators": [],
        "dashboard": {"enabled": False},
        "ollama": {"discover": False},
        "rpc_backends": {"timeout": f"{probe_timeout}s", "discover": False, "static": [{"address": a} for a in addresses]},
    }
    path = workdir / f"bench-{size}.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sollol_exporter", "--config.file", str(path), "--web.listen-address", f"127.0.0.1:{port}",
         "--log.level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/-/healthy", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        requests.get(url, timeout=30)  # warm-up
        walls, cpu_before = [], cpu_seconds(process.pid)
        for _ in range(scrapes):
            started = time.monotonic()
            reply = requests.get(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"}, timeout=30)
            walls.append(time.monotonic() - started)
            assert reply.status_code == 200
        cpu = (cpu_seconds(process.pid) - cpu_before) / scrapes
        up = reply.text.count("sollol_rpc_backend_up{") 
        return {"size": size, "blackholed": blackholed, "wall_median": statistics.median(walls), "wall_max": max(walls),
                "cpu_per_scrape": cpu, "rss": rss_bytes(process.pid), "backends_exported": up,
                "target": probe_timeout + 0.3}
    finally:
        process.terminate()
        process.wait(10)
        for listener in listeners:
            listener.close()
        for listener, _ in holes:
            close_listener(listener)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--probe-timeout", type=float, default=1.0)
    args = parser.parse_args()
    print(f"{'backends':>8} {'blackholed':>10} {'wall median':>12} {'wall max':>9} {'target':>7} {'cpu/scrape':>11} {'rss':>9}")
    with tempfile.TemporaryDirectory() as workdir:
        for size in (int(s) for s in args.sizes.split(",")):
            r = run(size, args.scrapes, args.probe_timeout, Path(workdir))
            assert r["backends_exported"] == size, r
            verdict = "ok" if r["wall_max"] <= r["target"] else "OVER"
            print(f"{r['size']:>8} {r['blackholed']:>10} {r['wall_median']:>11.3f}s {r['wall_max']:>8.3f}s {r['target']:>6.1f}s "
                  f"{r['cpu_per_scrape']:>10.3f}s {r['rss'] / 1048576:>7.1f}MiB  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
