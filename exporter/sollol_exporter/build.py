"""Which commit this exporter was built from: the `revision` of `sollol_exporter_build_info` and `--version`.

A built package (wheel, sdist, Docker image) carries a REVISION file next to this module, written by the build
(`build_hooks.py`); code run from a git checkout reads the checkout's HEAD; anything else is "unknown".
Standard library only: the build hooks load this file on its own, before the package can be imported.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

REVISION_FILE = "REVISION"
UNKNOWN = "unknown"
_REVISION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]{0,63}")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 or SHA-256 object names
MAX_GIT_FILE_BYTES = 1_048_576


@functools.cache
def revision() -> str:
    """The revision of the code running now; read once per process (the loaded code does not change)."""
    package = Path(__file__).resolve().parent
    return recorded_revision(package) or checkout_revision(package) or UNKNOWN


def clean(value: str | None) -> str | None:
    """A revision as given (file, build argument), or None when it is empty or does not look like one."""
    value = (value or "").strip()
    return value if _REVISION.fullmatch(value) else None


def recorded_revision(package: Path) -> str | None:
    """The revision the build wrote into the package, if any."""
    try:
        return clean((package / REVISION_FILE).read_text(encoding="ascii", errors="replace")[:256])
    except OSError:
        return None


def checkout_revision(package: Path) -> str | None:
    """HEAD of the git checkout this package directory sits in, when it sits in one as the source tree has it
    (`<root>/exporter/sollol_exporter`); None for an installed copy, so that a virtualenv inside some other
    repository never reports that repository's commit. Git's files are read directly: no git binary needed."""
    if package.parent.name != "exporter" or not (package.parent.parent / "pyproject.toml").is_file():
        return None
    git_dir = _git_dir(package.parent.parent)
    if git_dir is None:
        return None
    head = _read(git_dir / "HEAD")
    if head is None:
        return None
    if not head.startswith("ref:"):
        return head if _COMMIT.fullmatch(head) else None  # detached HEAD
    ref = head[4:].strip()
    if not ref.startswith("refs/") or ".." in ref:
        return None
    common = git_dir
    common_dir = _read(git_dir / "commondir")  # a linked worktree keeps its refs in the main repository
    if common_dir:
        common = (git_dir / common_dir).resolve()
    for base in dict.fromkeys((git_dir, common)):
        loose = _read(base / ref)
        if loose is not None:
            return loose if _COMMIT.fullmatch(loose) else None
    for line in (_read(common / "packed-refs") or "").splitlines():
        commit, _, name = line.partition(" ")
        if name == ref and _COMMIT.fullmatch(commit):
            return commit
    return None


def _git_dir(root: Path) -> Path | None:
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    pointer = _read(dot_git) if dot_git.is_file() else None  # worktree or submodule: "gitdir: <path>"
    if pointer and pointer.startswith("gitdir:"):
        target = (root / pointer[len("gitdir:"):].strip()).resolve()
        return target if target.is_dir() else None
    return None


def _read(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_GIT_FILE_BYTES).decode("utf-8", errors="replace").strip()
    except OSError:
        return None
