"""The revision of sollol_exporter_build_info and --version: from the file a build writes, else from the git
checkout the package runs from (a real git repository, read without git), else "unknown"."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from sollol_exporter import build


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main",
                           *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A git repository laid out as this project is: <root>/pyproject.toml, <root>/exporter/sollol_exporter."""
    root = tmp_path / "checkout"
    package = root / "exporter" / "sollol_exporter"
    package.mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (package / "__init__.py").write_text("")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def package_of(root: Path) -> Path:
    return root / "exporter" / "sollol_exporter"


def test_a_checkout_reports_its_head(checkout):
    assert build.checkout_revision(package_of(checkout)) == git(checkout, "rev-parse", "HEAD")
    (checkout / "more").write_text("x")
    git(checkout, "add", ".")
    git(checkout, "commit", "-q", "-m", "second")
    assert build.checkout_revision(package_of(checkout)) == git(checkout, "rev-parse", "HEAD")


def test_packed_refs_and_a_detached_head(checkout):
    head = git(checkout, "rev-parse", "HEAD")
    git(checkout, "pack-refs", "--all")
    assert not (checkout / ".git" / "refs" / "heads" / "main").exists()
    assert build.checkout_revision(package_of(checkout)) == head
    git(checkout, "checkout", "-q", "--detach")
    assert (checkout / ".git" / "HEAD").read_text().strip() == head
    assert build.checkout_revision(package_of(checkout)) == head


def test_a_linked_worktree_reports_its_own_head(checkout, tmp_path):
    first = git(checkout, "rev-parse", "HEAD")
    (checkout / "more").write_text("x")
    git(checkout, "add", ".")
    git(checkout, "commit", "-q", "-m", "second")
    worktree = tmp_path / "worktree"
    git(checkout, "worktree", "add", "-q", "-b", "old", str(worktree), first)
    assert (worktree / ".git").is_file()
    assert build.checkout_revision(package_of(worktree)) == first
    assert build.checkout_revision(package_of(checkout)) == git(checkout, "rev-parse", "HEAD") != first


def test_an_installed_copy_inside_another_repository_is_not_that_repositorys_commit(checkout):
    site = checkout / ".venv" / "lib" / "python3" / "site-packages" / "sollol_exporter"
    site.mkdir(parents=True)
    assert build.checkout_revision(site) is None


def test_no_checkout_and_no_file_is_none(tmp_path):
    package = tmp_path / "exporter" / "sollol_exporter"
    package.mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("")
    assert build.checkout_revision(package) is None and build.recorded_revision(package) is None


def test_the_recorded_file_is_read_and_checked(tmp_path):
    (tmp_path / build.REVISION_FILE).write_text("0123456789abcdef0123456789abcdef01234567\n")
    assert build.recorded_revision(tmp_path) == "0123456789abcdef0123456789abcdef01234567"
    for junk in ("", "\n", "<script>", "two words", "x" * 65):
        (tmp_path / build.REVISION_FILE).write_text(junk)
        assert build.recorded_revision(tmp_path) is None, junk


def test_this_process_reports_the_checkout_it_runs_from():
    root = Path(build.__file__).resolve().parent.parent.parent
    if not (root / ".git").exists():
        pytest.skip("not running from a git checkout")
    assert re.fullmatch(r"[0-9a-f]{40}", build.revision())  # the value itself: tests/test_cli.py, against git
