"""The real `sollol` package, in the virtual environment of its own that the test command builds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

DRIVER = Path(__file__).with_name("sollol_driver.py")


def python() -> Path:
    venv = os.environ.get("SOLLOL_VENV") or str(Path(os.environ.get("SOLLOL_EXPORTER_CACHE", Path.home() / ".cache/sollol-exporter")) / "sollol-0.9.66")
    interpreter = Path(venv) / "bin" / "python"
    if not interpreter.exists():
        raise RuntimeError(f"no sollol environment at {venv}: run the tests through scripts/test.sh, which builds it")
    return interpreter


def drive(mode: str, spec: dict, redis_url: str, extra_path: str = "", timeout: float = 300) -> dict:
    """Run the driver in SOLLOL's environment, pointed at `redis_url`; its JSON result."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLLOL_")}
    env["SOLLOL_REDIS_URL"] = redis_url
    if extra_path:
        env["PATH"] = f"{extra_path}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run([str(python()), str(DRIVER), mode, json.dumps(spec)], capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"sollol driver failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


CLUSTER = Path(__file__).with_name("sollol_cluster.py")


class RunningCluster:
    """`sollol_cluster.py` in SOLLOL's environment: an OllamaPool and/or a LlamaCppCoordinator serving requests
    until `stop`. llama-server, which SOLLOL starts, is stopped by its PID as well."""

    def __init__(self, spec: dict, redis_url: str, extra_path: str = "", env: dict | None = None, log_dir: Path | None = None):
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("SOLLOL_", "LLAMA_ARG_"))}
        environment["SOLLOL_REDIS_URL"] = redis_url
        if extra_path:
            environment["PATH"] = f"{extra_path}{os.pathsep}{environment.get('PATH', '')}"
        environment.update(env or {})
        self.log_path = Path(log_dir or ".") / "sollol-cluster.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen([str(python()), str(CLUSTER), json.dumps(spec)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.log, env=environment, cwd=log_dir)
        self.llama_server_pid = None
        line = _read_line(self.process, timeout=180)
        if not line:
            self.stop()
            raise RuntimeError(f"SOLLOL cluster did not start: {self.log_path.read_text(errors='replace')[-2000:]}")
        self.llama_server_pid = json.loads(line)["llama_server_pid"]

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.stdin.close()
                # A cluster whose nodes a test killed can sit in SOLLOL's retries for a long while: nothing is
                # checked after the stop, so it gets a few seconds to end on its own, then SIGKILL.
                self.process.wait(3)
        except (subprocess.TimeoutExpired, OSError):
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.llama_server_pid:
            try:
                os.kill(self.llama_server_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    """The first line the process prints, or "" if it exits or says nothing within `timeout`."""
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(process.stdout.readline().decode()), daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0].strip() if found else ""
