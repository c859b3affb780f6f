#!/usr/bin/env bash
# Create .venv with Python 3.11 and install the project (with its test tools) into it.
# Every package at the version in constraints.txt (scripts/lock.sh writes it), installed by uv
# (pip brings uv, then uv the rest: about 30 s where pip alone takes 80 s or more). Re-running is
# cheap: the install is skipped while pyproject.toml and constraints.txt are unchanged.
# Also the Debian packages the tests drive, installed with apt-get as root when missing: chromium and
# its driver (the dashboard test), redis-server (the Celery broker of the team deployment's test),
# postgresql-15 (a warehouse server the project did not start) and poppler-utils (pdftotext and
# pdftoppm, which read the invoice PDFs back in tests/spine/test_cycle_close.py).
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(chromium chromium-driver redis-server postgresql-15 poppler-utils)
missing=()
for package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "warning: ${missing[*]} missing (tests need them): apt-get install ${missing[*]} as root" >&2
    fi
fi

python=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"' \
    || { echo "error: need Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv
    # NOTE: --compile-bytecode, as pip does: where PYTHONDONTWRITEBYTECODE is set, every process
    # (each CLI call, each Airflow task) would otherwise compile again all that it imports.
    .venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python -c constraints.txt -e '.[test]'
    rm -f .venv/.installed-* && touch "$stamp"
fi
