#!/usr/bin/env bash
# The demo: set up, then bill two months of the worked examples end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/billing demo
