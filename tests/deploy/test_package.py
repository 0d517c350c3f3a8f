"""The package as an index would publish it: sdist and wheel from `python -m build` (built into a temporary
directory, never the checkout), `twine check`, the metadata (PEP 639 license, classifiers, project URLs, one
version), a README that reads right on an index page, the git revision both archives record, and the wheel installed
in fresh environments: `--help`, `--version` and a real `/metrics`, on this interpreter and on every other Python
3.11+ this machine has."""

from __future__ import annotations

import email.parser
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import requests
import yaml

from tests.support.exporter import parse, value
from tests.support.net import free_port, stop_process, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT_URL = "https://github.com/sollol-exporter/sollol-exporter"
# sha256 of https://www.apache.org/licenses/LICENSE-2.0.txt (also Debian's /usr/share/common-licenses/Apache-2.0)
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
SUPPORTED = ("3.11", "3.12", "3.13")
BUILT_FROM: dict[str, set] = {}  # the checkout's HEAD just before and after the build (others may commit meanwhile)


def git_head() -> str | None:
    """HEAD of this checkout, or None outside a git checkout (then nothing records a revision)."""
    result = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 and (ROOT / ".git").exists() else None


def source_version() -> str:
    """sollol_exporter.__version__ as written in the source: the one place the version lives."""
    text = (ROOT / "exporter" / "sollol_exporter" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"$', text, re.M).group(1)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist and wheel, built the way a release is (the wheel from the sdist), outside the checkout."""
    out = tmp_path_factory.mktemp("dist")
    before = {name: (ROOT / name).exists() for name in ("build", "dist")}
    head = git_head()
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                            capture_output=True, text=True, timeout=900, env=without_revision_variable())
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    BUILT_FROM["heads"] = {head, git_head()}
    assert {name: (ROOT / name).exists() for name in before} == before, "the build left build/ or dist/ in the checkout"
    return out


def the(dist: Path, pattern: str) -> Path:
    (path,) = dist.glob(pattern)
    return path


def wheel_metadata(dist: Path) -> email.message.Message:
    with zipfile.ZipFile(the(dist, "sollol_exporter-*.whl")) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


def without_revision_variable() -> dict:
    from sollol_exporter.build_hooks import ENVIRONMENT

    return {k: v for k, v in os.environ.items() if k != ENVIRONMENT}


def recorded_revision(dist: Path) -> str | None:
    """The revision the wheel carries (None: it carries none), after checking that the sdist carries the same."""
    with zipfile.ZipFile(the(dist, "*.whl")) as archive:
        wheel = archive.read("sollol_exporter/REVISION").decode().strip() if "sollol_exporter/REVISION" in archive.namelist() else None
    with tarfile.open(the(dist, "*.tar.gz")) as archive:
        member = f"sollol_exporter-{source_version()}/exporter/sollol_exporter/REVISION"
        sdist = archive.extractfile(member).read().decode().strip() if member in archive.getnames() else None
    assert wheel == sdist, (wheel, sdist)
    return wheel


def test_both_archives_record_the_revision_they_were_built_from(dist):
    recorded = recorded_revision(dist)
    if git_head() is None:
        assert recorded is None
        return
    assert recorded in BUILT_FROM["heads"] and re.fullmatch(r"[0-9a-f]{40}", recorded), (recorded, BUILT_FROM)


def test_the_images_revision_build_argument_is_recorded(tmp_path):
    """As exporter/Dockerfile builds: only the files it copies (no .git), the REVISION build argument in the
    environment variable the build reads. Without it, nothing is recorded and the exporter says "unknown"."""
    from sollol_exporter.build_hooks import ENVIRONMENT

    source = tmp_path / "src"
    (source / "exporter").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "exporter" / "sollol_exporter", source / "exporter" / "sollol_exporter",
                    ignore=shutil.ignore_patterns("__pycache__", "REVISION"))
    for given, expected in (("0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123456789abcdef01234567"), ("", None)):
        out = tmp_path / f"wheel-{bool(given)}"
        result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)],
                                capture_output=True, text=True, timeout=900, env={**without_revision_variable(), ENVIRONMENT: given})
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        with zipfile.ZipFile(the(out, "*.whl")) as archive:
            names = archive.namelist()
            assert (archive.read("sollol_exporter/REVISION").decode().strip() if "sollol_exporter/REVISION" in names else None) == expected
    assert not (source / "exporter" / "sollol_exporter" / "REVISION").exists()  # written into the build, not the source


def test_build_and_twine_check_pass(dist):
    version = source_version()
    assert the(dist, "*.whl").name == f"sollol_exporter-{version}-py3-none-any.whl"
    assert the(dist, "*.tar.gz").name == f"sollol_exporter-{version}.tar.gz"
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("PASSED") == 2, check.stdout


def test_license_is_the_full_apache_2_0_text_and_ships_in_both_archives(dist):
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_0_SHA256, "LICENSE is not the verbatim Apache License 2.0"
    with zipfile.ZipFile(the(dist, "*.whl")) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(name) == text
    with tarfile.open(the(dist, "*.tar.gz")) as archive:
        assert archive.extractfile(f"sollol_exporter-{source_version()}/LICENSE").read() == text


def test_metadata_license_classifiers_urls_python_and_version(dist):
    meta = wheel_metadata(dist)
    assert meta["Metadata-Version"] == "2.4"
    assert meta["Version"] == source_version()
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    classifiers = meta.get_all("Classifier")
    assert not [c for c in classifiers if c.startswith("License ::")], "PEP 639: the expression replaces License classifiers"
    for wanted in ("Intended Audience :: System Administrators", "Operating System :: POSIX :: Linux", "Topic :: System :: Monitoring"):
        assert wanted in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert any(c.startswith("Environment :: ") for c in classifiers)
    pythons = sorted(c.rsplit(" :: ", 1)[1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert pythons == list(SUPPORTED)
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Author"] == meta["Maintainer"] == "sollol-exporter developers"
    assert {"prometheus", "exporter", "sollol"} <= set(meta["Keywords"].split(","))
    urls = dict(entry.split(", ", 1) for entry in meta.get_all("Project-URL"))
    assert set(urls) == {"Homepage", "Source", "Issues", "Documentation"}
    assert urls["Homepage"] == urls["Source"] == PROJECT_URL
    assert all(url.startswith(PROJECT_URL) for url in urls.values()), urls
    assert meta["Description-Content-Type"] == "text/markdown"


def test_the_project_url_is_the_one_the_mixin_uses():
    """The project's public address is configured in the mixin too (runbook URLs); both must name the same place."""
    mixin = ROOT / "mixin" / "config.py"
    found = re.search(r'^PROJECT_URL\s*=\s*"([^"]+)"', mixin.read_text(), re.M) if mixin.exists() else None
    if found is None:
        pytest.skip("mixin/config.py does not define PROJECT_URL")
    assert found.group(1) == PROJECT_URL == PYPROJECT["project"]["urls"]["Homepage"]


def test_readme_links_work_on_a_package_index_page(dist):
    """On an index page there is no repository to resolve a relative link against: every link is absolute (or an
    anchor on the page itself), and one into this project points under its URL."""
    body = wheel_metadata(dist).get_payload()
    assert body.strip() == (ROOT / "README.md").read_text().strip()
    targets = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)", body)
    targets += re.findall(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?\s*$", body, re.M)  # reference-style definitions
    targets += re.findall(r"""(?:href|src)\s*=\s*["']([^"']+)""", body)
    assert targets, "no links found: the pattern is wrong"
    relative = [t for t in targets if not re.match(r"(https?://|mailto:|#)", t)]
    assert not relative, f"relative links break on a package index page: {relative}"
    for target in targets:
        if "github.com/sollol-exporter/" in target:
            assert target.startswith(PROJECT_URL + "/") or target == PROJECT_URL, target


def test_the_wheel_holds_the_package_and_its_console_script_only(dist):
    with zipfile.ZipFile(the(dist, "*.whl")) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "sollol_exporter/cli.py" in names and "sollol_exporter/web/server.py" in names
    assert not [n for n in names if not n.startswith(("sollol_exporter/", "sollol_exporter-"))], names
    assert "sollol-exporter = sollol_exporter.cli:main" in entry_points


# The installed wheel, run as a user would.

def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOLLOL_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/bin:/bin"
    env.update(extra)
    return env


def closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


def run_installed(venv: Path, env: dict, version: str, revision: str | None) -> None:
    """--help and --version, then serve: start on a free loopback port, scrape /metrics once, stop by PID."""
    exe = str(venv / "bin" / "sollol-exporter")
    helped = subprocess.run([exe, "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "--web.listen-address" in helped.stdout and "sollol-exporter agent" in helped.stdout
    shown = subprocess.run([exe, "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"sollol-exporter {version} (revision {revision or 'unknown'})"
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import sollol_exporter, platform; "
                            "print(sollol_exporter.__file__); print(platform.python_version())"],
                           capture_output=True, text=True, env=env, timeout=60)
    module_file, python_version = where.stdout.split()
    assert module_file.startswith(str(venv)), where.stdout + where.stderr  # the wheel, not this checkout

    config = venv.parent / "config.yml"
    config.write_text(yaml.safe_dump({
        "redis": {"url": f"redis://127.0.0.1:{closed_port()}/0", "timeout": "500ms"},
        "coordinators": [],
        "dashboard": {"enabled": False},
        "ollama": {"discover": False},
    }))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = venv.parent / "exporter.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([exe, "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the installed exporter exited: {log.read_text(errors='replace')}")
            try:
                return requests.get(url + "/-/healthy", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(up, 30, what="the installed exporter")
        reply = requests.get(url + "/metrics", timeout=30)
        assert reply.status_code == 200, reply.text[:500]
        samples = parse(reply.text)
        # one version everywhere: --version, the build_info label and the package metadata agree
        assert value(samples, "sollol_exporter_build_info", version=version, revision=revision or "unknown",
                     python_version=python_version) == 1
        assert value(samples, "sollol_redis_up") == 0
    finally:
        stop_process(process)
    assert process.returncode == 0, log.read_text(errors="replace")
    assert "Traceback" not in log.read_text(errors="replace")


def test_installed_wheel_runs_help_version_and_serves_metrics(dist, tmp_path):
    # A fresh environment, so that the installed wheel, not this checkout, is what runs; its dependencies come
    # from this environment's site-packages. (pip install --prefix would uninstall this checkout's own install.)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                                "--no-deps", str(the(dist, "*.whl"))], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    run_installed(venv, clean_env(PYTHONPATH=sysconfig.get_paths()["purelib"]), source_version(), recorded_revision(dist))


def other_pythons() -> list:
    """Every other Python 3.11+ on this machine (PATH, /usr/bin, pyenv), one per minor version."""
    own = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [shutil.which(f"python3.{minor}") for minor in range(11, 20)]
    candidates += sorted(glob.glob("/usr/bin/python3.*")) + sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")))
    found: dict[str, str] = {}
    for path in filter(None, candidates):
        if not re.search(r"python3(\.\d+)?$", path):
            continue
        try:
            probe = subprocess.run([path, "-c", "import sys, ssl, venv; print('%d.%d' % sys.version_info[:2])"],
                                   capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        minor = probe.stdout.strip()
        if probe.returncode == 0 and minor != own and tuple(map(int, minor.split("."))) >= (3, 11):
            found.setdefault(minor, path)
    return [pytest.param(path, id=f"python{minor}") for minor, path in sorted(found.items())] or [
        pytest.param(None, id="none", marks=pytest.mark.skip(reason="no other Python 3.11+ interpreter on this machine"))
    ]


@pytest.mark.parametrize("python", other_pythons())
def test_wheel_installs_with_its_dependencies_and_runs_on_other_pythons(dist, tmp_path, python):
    """A plain `pip install sollol_exporter-*.whl` in a venv of another interpreter: the dependencies resolve
    from the index for that Python, and the exporter answers --help, --version and /metrics."""
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                str(the(dist, "*.whl"))], capture_output=True, text=True, timeout=600, env=clean_env())
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    run_installed(venv, clean_env(), source_version(), recorded_revision(dist))
