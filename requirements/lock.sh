#!/usr/bin/env bash
# Refresh the lock: requirements/dev.txt and requirements/runtime.txt, from pyproject.toml.
#
#     bash requirements/lock.sh                      # after editing pyproject.toml: keep every pin that still fits
#     bash requirements/lock.sh --upgrade            # every package to its newest allowed release
#     bash requirements/lock.sh -P msgspec           # that one package (and what it needs) only
#
# Then run `bash tests/run.sh`: it installs the new lock into .venv (and .venv-3.13) and
# runs everything CI runs. Commit the lock with whatever the new releases required.
#
# dev.txt is everything: the runtime, the dev and bench extras and the build backend
# (setuptools, from [build-system]), which the README's commands, tests/run.sh and CI
# install. runtime.txt is the service alone (the container image), resolved under
# dev.txt as constraints, so a package pinned in both is pinned to the same release.
# Both are universal: one file for every platform and every Python from 3.11 on, with
# the hashes of every wheel and sdist, so plain `pip install --require-hashes -r` takes
# them. Only this refresh needs uv; it is in the dev extra, so it is locked too.
set -euo pipefail
cd "$(dirname "$0")/.."

uv=.venv/bin/uv
if [ ! -x "$uv" ]; then
    uv=$(command -v uv || true)
fi
if [ -z "$uv" ]; then
    echo "uv not found: install the lock first (bash tests/run.sh, or the README's set-up command)," >&2
    echo "or put uv on PATH (pip install uv)." >&2
    exit 1
fi

# The build backend, from [build-system] requires, is locked with the rest: the project is
# installed with --no-build-isolation, so nothing unpinned is fetched to build it.
py=.venv/bin/python; [ -x "$py" ] || py=python3
build_requires=$("$py" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')

# 3.11 is the lowest Python of requires-python; --universal covers every one above it.
common=(--universal --python-version 3.11 --generate-hashes --quiet
    --custom-compile-command "bash requirements/lock.sh")

echo "$build_requires" | "$uv" pip compile "${common[@]}" pyproject.toml - \
    --extra dev --extra bench -o requirements/dev.txt "$@"
echo "$build_requires" | "$uv" pip compile "${common[@]}" pyproject.toml - \
    -c requirements/dev.txt -o requirements/runtime.txt "$@"
echo "requirements/dev.txt and requirements/runtime.txt are up to date; now run: bash tests/run.sh"
