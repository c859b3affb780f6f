#!/usr/bin/env bash
# The whole test suite against a real embedded PostgreSQL, real dbt and real Airflow runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
