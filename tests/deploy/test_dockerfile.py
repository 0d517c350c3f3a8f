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
        _name, _, tag = base.partition(":")
        assert tag and tag != "latest" and any(c.isdigit() for c in tag), base
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    health = [args for op, args in final if op == "HEALTHCHECK"]
    assert health and "/-/healthy" in health[0]
    assert ("ENTRYPOINT", '["sollol-exporter"]') in final
    assert any(op == "COPY" and "--from=build" in args and "/wheels" in args for op, args in final)
    assert any(op == "RUN" and "pip wheel" in args for op, args in steps)


def build_stage_copies() -> set[str]:
    """What the build stage copies from the context into the directory `pip wheel` builds."""
    steps = instructions()
    second = [i for i, (op, _) in enumerate(steps) if op == "FROM"][1]
    copied = set()
    for op, args in steps[:second]:
        if op == "COPY" and "--from=" not in args:
            sources = [a for a in args.split() if not a.startswith("--")][:-1]
            copied.update(s.rstrip("/") for s in sources)
    return copied


def test_the_build_stage_copies_every_file_the_wheel_is_built_from():
    """pip wheel in the image sees only what COPY brought: the readme (the long description) and the license files
    (PEP 639 license-files, shipped in the wheel) must be among them, or the image's wheel silently lacks them."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = {"pyproject.toml", project["readme"], *project.get("license-files", []), "exporter/sollol_exporter"}
    missing = needed - build_stage_copies()
    assert not missing, f"exporter/Dockerfile's build stage does not COPY {sorted(missing)}"


def test_the_image_python_is_a_supported_one():
    import tomllib

    classifiers = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["classifiers"]
    for op, args in instructions():
        if op == "FROM":
            version = ".".join(args.split()[0].partition(":")[2].split("-")[0].split(".")[:2])
            assert f"Programming Language :: Python :: {version}" in classifiers, args


def test_the_build_stage_passes_the_revision_build_argument_to_the_wheel_build():
    """.git is not in the image's context: the revision of sollol_exporter_build_info comes from `--build-arg
    REVISION=...`, handed to the wheel build in the variable the build hook reads (test_package.py builds so)."""
    from sollol_exporter.build_hooks import ENVIRONMENT

    steps = instructions()
    second = [i for i, (op, _) in enumerate(steps) if op == "FROM"][1]
    build_stage = steps[:second]
    assert any(op == "ARG" and args.split("=")[0] == "REVISION" for op, args in build_stage)
    wheel = [args for op, args in build_stage if op == "RUN" and "pip wheel" in args]
    assert wheel and f'{ENVIRONMENT}="$REVISION" pip wheel' in wheel[0], wheel
