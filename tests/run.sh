#!/usr/bin/env bash
# The one test command (README, CI): lint, type-check, then the whole suite twice,
# against the PostgreSQL at DATABASE_URL and against the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

echo "== ruff and mypy"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy --strict service tests bench

server_url="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
echo "== tests against the PostgreSQL server at ${server_url%%\?*}"
DATABASE_URL="$server_url" .venv/bin/python -m pytest -q "$@"

echo "== tests against the embedded PostgreSQL (no DATABASE_URL)"
env -u DATABASE_URL .venv/bin/python -m pytest -q "$@"
