"""setuptools commands that write the revision into what is built (pyproject.toml, [tool.setuptools.cmdclass]).

Used at build time only, never imported by the exporter. The revision is, in this order: the environment variable
SOLLOL_EXPORTER_REVISION (the Docker build passes its REVISION build argument so), the REVISION file of the
source (an sdist carries one), the git checkout being built. None known: nothing is written, and the exporter
reports "unknown".
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

from setuptools.command.build_py import build_py as _build_py
from setuptools.command.sdist import sdist as _sdist

PACKAGE = "sollol_exporter"
ENVIRONMENT = "SOLLOL_EXPORTER_REVISION"


@functools.cache
def _build_module():
    # setuptools loads this module by its path, without its package, which cannot be imported before it is built.
    spec = importlib.util.spec_from_file_location("_sollol_exporter_build", Path(__file__).with_name("build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def revision_to_record(package_source: Path) -> str | None:
    build = _build_module()
    return (build.clean(os.environ.get(ENVIRONMENT)) or build.recorded_revision(package_source)
            or build.checkout_revision(package_source.resolve()))


def _write(package_dir: Path, revision: str | None) -> None:
    """REVISION in package_dir, or no REVISION there when none is known (an earlier build's must not stay)."""
    target = package_dir / _build_module().REVISION_FILE
    if target.exists():
        target.unlink()  # may be a hard link into the source tree: never write through it
    if revision:
        target.write_text(revision + "\n", encoding="ascii")


class BuildPy(_build_py):
    """build_py, then REVISION into the built package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the checkout, which knows its own revision
        _write(Path(self.build_lib) / PACKAGE, revision_to_record(Path(self.get_package_dir(PACKAGE))))


class Sdist(_sdist):
    """sdist, with REVISION in the package directory of the archive (the wheel built from it reads it there)."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        package_source = Path(self.get_finalized_command("build_py").get_package_dir(PACKAGE))
        _write(Path(base_dir) / package_source, revision_to_record(package_source))
