"""exporter/Dockerfile without a Docker engine: hadolint, the rules we hold it to, and the wheel it installs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
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


def test_the_wheel_builds_and_its_console_script_runs(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(tmp_path)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("sollol_exporter-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "sollol_exporter/cli.py" in names and not any(n.startswith("tests/") for n in names)
    assert "sollol-exporter = sollol_exporter.cli:main" in entry_points
    # A fresh environment, so that the installed wheel, not this checkout, is what runs; its dependencies come
    # from this environment's site-packages. (pip install --prefix would uninstall this checkout's own install.)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    env = {"PYTHONPATH": sysconfig.get_paths()["purelib"], "PATH": "/usr/bin:/bin"}
    version = subprocess.run([str(venv / "bin" / "sollol-exporter"), "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("sollol-exporter "), version.stderr
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import sollol_exporter; print(sollol_exporter.__file__)"],
                           capture_output=True, text=True, env=env)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
