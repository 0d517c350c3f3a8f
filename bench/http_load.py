#!/usr/bin/env python3
"""HTTP load on the real exporter: how scrape latency, threads, open files and memory hold up.

Starts the exporter (a subprocess, as users run it) against a tiny local redis-server, all on loopback, and runs:
  concurrent   rounds of 50 scrapes at once
  consecutive  10,000 scrapes one after the other on one kept-alive connection (and how many per second)
  idle         2,000 connections opened and held silent, while scrapes go on
  flood        many connects and closes as fast as possible, some with half a request, while scrapes go on
  auth         behind basic auth (bcrypt cost 10), clients sending random passwords as fast as they are answered
               (--attackers, 45) while a scraper that knows the password goes on:
                 auth-cached   attackers on /metrics, from the scraper's address and user name; cached password
                 auth-health   12 attackers on /-/healthy (its allowance is 8); cached password
                 auth-first    first logins (password not cached yet) while the attackers send from another address
                 auth-same     first logins while the attackers send from the same address and the same user name:
                               nothing tells them apart, so a login waits its turn among theirs
For each case it prints scrape latency percentiles (p50/p95/p99/max), failures, and the exporter's threads, open
file descriptors and RSS read from /proc. Bounded loops; it stops the exporter and redis by PID when done.

    .venv/bin/python bench/http_load.py [--cases concurrent,consecutive,idle,flood,auth] [--consecutive 10000]
                                        [--idle 2000] [--flood 5000] [--attackers 45]

To compare with another copy of the package, set PYTHONPATH to its directory: the subprocess inherits it.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import bcrypt
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.auth_flood import WrongPasswords, basic, request
from tests.support.net import free_port, stop_process, wait_for
from tests.support.redis_server import RedisServer

LOOP = "127.0.0.1"
OTHER_HOST = "127.0.0.2"  # loopback too: the attackers' address when they play another host
CASE_SECONDS = 60  # no case runs longer than this, whatever the server does
CASES = ("concurrent", "consecutive", "idle", "flood", "auth")
FIRST_LOGINS = 10


def process_figures(pid: int) -> dict:
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        status[key] = value.strip()
    return {"threads": int(status["Threads"]), "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "rss_mb": int(status["VmRSS"].split()[0]) / 1024}


class Scraper:
    """Scrapes over one kept-alive connection, reconnecting when the server closes it."""

    def __init__(self, port: int, timeout: float = 30):
        self.port = port
        self.timeout = timeout
        self.connection = None

    def scrape(self) -> tuple[float, int | str]:
        started = time.perf_counter()
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection(LOOP, self.port, timeout=self.timeout)
            self.connection.request("GET", "/metrics", headers={"Accept-Encoding": "gzip", "X-Prometheus-Scrape-Timeout-Seconds": "10"})
            reply = self.connection.getresponse()
            reply.read()
            status = reply.status
            if reply.getheader("Connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException) as err:
            self.close()
            status = type(err).__name__
        return time.perf_counter() - started, status

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def summary(name: str, results: list[tuple[float, int | str]], figures: dict, extra: str = "") -> None:
    latencies = sorted(seconds * 1000 for seconds, status in results if status == 200)
    failures = {}
    for _, status in results:
        if status != 200:
            failures[str(status)] = failures.get(str(status), 0) + 1

    def pct(p):
        return latencies[min(len(latencies) - 1, round(p / 100 * (len(latencies) - 1)))] if latencies else float("nan")

    failed = ", ".join(f"{k}: {v}" for k, v in sorted(failures.items())) or "none"
    print(f"{name:<12} {len(results):>6} {pct(50):>8.1f} {pct(95):>8.1f} {pct(99):>8.1f} {max(latencies, default=float('nan')):>8.1f}"
          f" {figures['threads']:>8} {figures['fds']:>6} {figures['rss_mb']:>7.1f}   failed: {failed}{extra}", flush=True)


def concurrent(port: int, pid: int, rounds: int = 5, width: int = 50):
    results, lock, peak = [], threading.Lock(), {"threads": 0, "fds": 0, "rss_mb": 0.0}
    for _ in range(rounds):
        barrier = threading.Barrier(width)

        def one(barrier=barrier):
            scraper = Scraper(port)
            barrier.wait()
            outcome = scraper.scrape()
            scraper.close()
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=one) for _ in range(width)]
        for thread in threads:
            thread.start()
        time.sleep(0.05)
        figures = process_figures(pid)
        peak = {k: max(peak[k], figures[k]) for k in peak}
        for thread in threads:
            thread.join(60)
    summary("concurrent", results, peak, f"  ({rounds} rounds of {width})")


def consecutive(port: int, pid: int, count: int):
    scraper, results = Scraper(port), []
    started = time.monotonic()
    deadline = started + 10 * CASE_SECONDS
    while len(results) < count and time.monotonic() < deadline:
        results.append(scraper.scrape())
    elapsed = time.monotonic() - started
    scraper.close()
    summary("consecutive", results, process_figures(pid), f"  ({len(results) / elapsed:.0f} scrapes/s on one kept-alive connection)")


def scrapes_during(port: int, stop: threading.Event, results: list) -> threading.Thread:
    def loop():
        scraper = Scraper(port)
        while not stop.is_set():
            results.append(scraper.scrape())
            time.sleep(0.05)
        scraper.close()

    thread = threading.Thread(target=loop)
    thread.start()
    return thread


def idle(port: int, pid: int, count: int, hold: float = 5.0):
    sockets, refused = [], 0
    stop, results = threading.Event(), []
    scraping = scrapes_during(port, stop, results)
    deadline = time.monotonic() + CASE_SECONDS
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        sock = socket.socket()
        sock.settimeout(5)
        try:
            sock.connect((LOOP, port))
            sockets.append(sock)
        except OSError:
            sock.close()
            refused += 1
    time.sleep(hold)
    figures = process_figures(pid)
    alive = 0
    for sock in sockets:
        try:
            sock.setblocking(False)
            alive += sock.recv(1) != b""  # b"" means the server closed it
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    stop.set()
    scraping.join(60)
    for sock in sockets:
        sock.close()
    summary("idle", results, figures, f"  ({len(sockets)} opened, {refused} failed to open, {alive} still open after {hold:.0f} s)")


def flood(port: int, pid: int, count: int):
    stop, results = threading.Event(), []
    scraping = scrapes_during(port, stop, results)
    errors = 0
    started = time.monotonic()
    done = 0
    for i in range(count):
        if time.monotonic() - started > CASE_SECONDS:
            break
        done += 1
        try:
            with socket.create_connection((LOOP, port), timeout=1) as sock:
                if i % 3 == 1:
                    sock.sendall(b"GET /metrics HTTP/1.1\r\nHo")
                elif i % 3 == 2:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
        except OSError:
            errors += 1
    elapsed = time.monotonic() - started
    time.sleep(1.0)
    figures = process_figures(pid)
    stop.set()
    scraping.join(60)
    summary("flood", results, figures, f"  ({done} connects in {elapsed:.1f} s, {errors} failed)")
    time.sleep(1.0)
    scraper = Scraper(port, timeout=5)
    summary("after", [scraper.scrape() for _ in range(20)], process_figures(pid))


def timed(reply: tuple[int | str, float]) -> tuple[float, int | str]:
    status, seconds = reply
    return seconds, status


def attacked(port: int, attackers: WrongPasswords, during) -> tuple[list, str]:
    """What `during()` returns while the attackers run (after they have had a second to fill the queue), and a
    note of the answers they got."""
    with attackers:
        time.sleep(1.5)
        results = during()
    answers = ", ".join(f"{status}: {count}" for status, count in sorted(attackers.statuses.items(), key=str))
    return results, f"  ({attackers.count} attackers on {attackers.path} from {attackers.source}, answered {answers})"


def auth(workdir: Path, config: Path, count: int):
    """Basic auth under a flood of wrong passwords: see the module's docstring."""
    users = {"prometheus": bcrypt.hashpw(b"right", bcrypt.gensalt(10)).decode()}
    users.update({f"first-{i}": bcrypt.hashpw(b"right", bcrypt.gensalt(10)).decode() for i in range(FIRST_LOGINS)})
    web = workdir / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": users}))
    good = basic("prometheus", "right")
    with running_exporter(workdir, config, "--web.config.file", str(web)) as (port, pid):
        assert request(port, "/metrics", good)[0] == 200, "the exporter refused the right password"

        def cached(path: str):
            def scrapes():
                results = []
                for _ in range(15):
                    results.append(timed(request(port, path, good)))
                    time.sleep(0.1)
                return results
            return scrapes

        results, note = attacked(port, WrongPasswords(port, count), cached("/metrics"))
        summary("auth-cached", results, process_figures(pid), note)
        results, note = attacked(port, WrongPasswords(port, 12, path="/-/healthy"), cached("/-/healthy"))
        summary("auth-health", results, process_figures(pid), note)

        def first_logins(numbers):
            return lambda: [timed(request(port, "/metrics", basic(f"first-{i}", "right"))) for i in numbers]

        half = FIRST_LOGINS // 2
        results, note = attacked(port, WrongPasswords(port, count, source=OTHER_HOST), first_logins(range(half)))
        summary("auth-first", results, process_figures(pid), note)
        results, notes = [], ""
        for i in range(half, FIRST_LOGINS):  # the attackers use the user name of the login that follows them
            logins, notes = attacked(port, WrongPasswords(port, count, user=f"first-{i}"), first_logins([i]))
            results += logins
        summary("auth-same", results, process_figures(pid), notes)


class running_exporter:
    """The exporter as a subprocess on a free loopback port; (port, pid) inside the block, stopped by PID after."""

    def __init__(self, workdir: Path, config: Path, *extra: str):
        self.workdir, self.config, self.extra = workdir, config, extra

    def __enter__(self) -> tuple[int, int]:
        self.port = free_port()
        self.log = open(self.workdir / f"exporter-{self.port}.log", "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "sollol_exporter", "--config.file", str(self.config),
                                         "--web.listen-address", f"{LOOP}:{self.port}", *self.extra],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: request(self.port, "/-/healthy", None, timeout=2)[0] in (200, 401), 30, interval=0.2, what="exporter start")
        except BaseException:
            self.__exit__()
            raise
        return self.port, self.process.pid

    def __exit__(self, *exc) -> None:
        stop_process(self.process)
        self.log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, from: " + ", ".join(CASES))
    parser.add_argument("--consecutive", type=int, default=10_000)
    parser.add_argument("--idle", type=int, default=2_000)
    parser.add_argument("--flood", type=int, default=5_000)
    parser.add_argument("--attackers", type=int, default=45)
    args = parser.parse_args()
    cases = [case.strip() for case in args.cases.split(",") if case.strip()]
    if unknown := set(cases) - set(CASES):
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="sollol-http-load-") as directory:
        workdir = Path(directory)
        redis = RedisServer(workdir)
        config = workdir / "exporter.yml"
        config.write_text(yaml.safe_dump({"redis": {"url": redis.url, "timeout": "1s"}, "coordinators": [],
                                          "dashboard": {"enabled": False}, "ollama": {"discover": False}}))
        try:
            print(f"{'case':<12} {'scrapes':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'threads':>8} {'fds':>6} {'RSS MB':>7}")
            if set(cases) - {"auth"}:
                with running_exporter(workdir, config) as (port, pid):
                    summary("start", [Scraper(port).scrape() for _ in range(5)], process_figures(pid))
                    if "concurrent" in cases:
                        concurrent(port, pid)
                    if "consecutive" in cases:
                        consecutive(port, pid, args.consecutive)
                    if "idle" in cases:
                        idle(port, pid, args.idle)
                    if "flood" in cases:
                        flood(port, pid, args.flood)
            if "auth" in cases:
                auth(workdir, config, args.attackers)
        finally:
            redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
