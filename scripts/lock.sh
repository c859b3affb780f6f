#!/usr/bin/env bash
# Re-resolve the dependencies in a scratch venv and pin every package in constraints.txt, which
# scripts/bootstrap.sh installs with: run it after changing a dependency in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$python" -m venv "$scratch/venv"
# uv too: scripts/bootstrap.sh installs it first, at its pinned version, to install the rest
"$scratch/venv/bin/pip" install --quiet --disable-pip-version-check uv -e '.[test]'
{
    echo "# Every package of a tested install, pinned (scripts/lock.sh writes this file)."
    "$scratch/venv/bin/pip" freeze --exclude-editable --disable-pip-version-check
} > constraints.txt
