"""The real `sollol` package, in the virtual environment of its own that the test command builds."""

from __future__ import annotations

import json
import os
import subprocess
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
