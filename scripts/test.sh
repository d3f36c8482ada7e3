#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: lint, format check, pytest. Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
export RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/pytest "$@"
