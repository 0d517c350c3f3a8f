"""exporter/Dockerfile without a Docker engine: hadolint and the rules we hold it to. The wheel it installs is
built, checked and run from a fresh environment in test_package.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DOCKERFILE = ROOT / "exporter" / "Dockerfile"


def instructions():
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(" ", 1)[0].upper(), line.split(" ", 1)[1] if " " in line else "") for line in lines]


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_pinned_non_root_with_healthcheck():
    steps = instructions()
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert len(bases) == 2
    for base in bases:
        name, _, tag = base.partition(":")
        assert tag and tag != "latest" and any(c.isdigit() for c in tag), base
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    health = [args for op, args in final if op == "HEALTHCHECK"]
    assert health and "/-/healthy" in health[0]
    assert ("ENTRYPOINT", '["sollol-exporter"]') in final
    assert any(op == "COPY" and "--from=build" in args and "/wheels" in args for op, args in final)
    assert any(op == "RUN" and "pip wheel" in args for op, args in steps)
