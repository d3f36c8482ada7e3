#!/usr/bin/env bash
# The main job: set up, run the demo profile of the constant-family sweep (with SGD and SAM endpoints)
# and of the closed-loop `policies` sweep (AE-SAM, budget(0.3), budget(0.5); its SGD, SAM and
# constant(0.3/0.5) cells are the constant sweep's, so only 9 cells are new) on the offline
# Fashion-MNIST, then write the figures and tables. Re-running resumes.
# Usage: bash scripts/demo.sh [STORE_DIR]   (default: results/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
STORE=${1:-results/demo}
RST=.venv/bin/rstsweep
export RAY_USAGE_STATS_ENABLED=0
$RST schedules --steps 1000
$RST plan constant --profile demo --store "$STORE"
$RST run constant --profile demo --store "$STORE"
$RST status constant --profile demo --store "$STORE"
$RST run policies --profile demo --store "$STORE"
$RST status policies --profile demo --store "$STORE"
$RST figures --store "$STORE" --out "$STORE/figures"
$RST tables --store "$STORE" --format md --out "$STORE/tables"
echo "demo: figures in $STORE/figures, tables in $STORE/tables"
