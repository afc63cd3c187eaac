#!/usr/bin/env bash
# The one test command (README, CI). It installs the lock (requirements/dev.txt) into
# .venv, lints and type-checks, runs the whole suite twice, against the PostgreSQL at
# DATABASE_URL and against the embedded default; then installs the same lock into
# .venv-3.13 and runs the whole suite once more there, on the highest Python that
# pyproject's requires-python allows, against the server (its unit, contract and HTTP
# tests, and the integration tests for a few seconds more; the HTTP tests start the
# embedded default too). Arguments go to every pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

LOCK=requirements/dev.txt
LOWEST=3.11  # requires-python's lower bound: the whole suite runs on it
HIGHEST=3.13 # requires-python's upper bound (<3.14): the whole suite, against the server
server_url="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"

step() { echo "== $* (at ${SECONDS}s)"; }

# is_python COMMAND VERSION: whether COMMAND runs that Python (pyenv's shims exist for
# versions that are not active, so it is run to be sure).
is_python() {
    "$1" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$2'.split('.'))))" >/dev/null 2>&1
}

# python_of VERSION: a command that runs that Python, from PATH or pyenv; empty if none.
python_of() {
    local candidate
    for candidate in "python$1" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/python3 python3; do
        if is_python "$candidate" "$1"; then
            echo "$candidate"
            return
        fi
    done
}

# install VENV PYTHON VERSION: exactly the lock in VENV (made anew with PYTHON unless it
# runs VERSION already), then the project.
install() {
    local venv=$1 python=$2 version=$3
    if [ -e "$venv" ] && ! is_python "$venv/bin/python" "$version"; then
        echo "$venv is not a Python $version virtualenv: making it anew"
        rm -rf "$venv"
    fi
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --require-hashes -r "$LOCK"
    # The build backend is in the lock, so building the project fetches nothing.
    "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
    # Exactly the lock: whatever an older .venv holds beyond it goes.
    local strays
    strays=$("$venv/bin/python" - "$LOCK" <<'PY'
import re
import sys
from importlib import metadata


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


locked = {norm(m) for m in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open(sys.argv[1]).read(), re.M)}
installed = {norm(d.metadata["Name"]) for d in metadata.distributions()}
print(" ".join(sorted(installed - locked - {"pip", "hiring-news"})))
PY
    )
    if [ -n "$strays" ]; then
        echo "removing from $venv what the lock does not hold: $strays"
        # shellcheck disable=SC2086
        "$venv/bin/python" -m pip uninstall --quiet --yes $strays
    fi
    "$venv/bin/python" -m pip check >/dev/null
}

step "install $LOCK into .venv (Python $LOWEST)"
low=$(python_of "$LOWEST")
if [ -z "$low" ]; then
    echo "Python $LOWEST not found (python$LOWEST on PATH, or pyenv)" >&2
    exit 1
fi
install .venv "$low" "$LOWEST"

step "ruff and mypy"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy --strict service tests bench

step "Python $LOWEST: tests against the PostgreSQL server at ${server_url%%\?*}"
DATABASE_URL="$server_url" .venv/bin/python -m pytest -q "$@"

step "Python $LOWEST: tests against the embedded PostgreSQL (no DATABASE_URL)"
env -u DATABASE_URL .venv/bin/python -m pytest -q "$@"

high=$(python_of "$HIGHEST")
if [ -z "$high" ]; then
    if [ "${CI:-}" = "true" ]; then
        echo "Python $HIGHEST not found (python$HIGHEST on PATH, or pyenv): CI tests every Python it claims" >&2
        exit 1
    fi
    step "Python $HIGHEST not found: its tests are SKIPPED here (CI runs them)" >&2
    exit 0
fi
step "install $LOCK into .venv-$HIGHEST (Python $HIGHEST)"
install ".venv-$HIGHEST" "$high" "$HIGHEST"
step "Python $HIGHEST: tests against the PostgreSQL server at ${server_url%%\?*}"
DATABASE_URL="$server_url" ".venv-$HIGHEST/bin/python" -m pytest -q "$@"
