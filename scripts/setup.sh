#!/usr/bin/env bash
# Set up a fresh machine for rstsweep: the offline dataset (Debian package) and a venv with the package.
# Idempotent: a second run only checks. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

FMNIST_DIR=/usr/share/datasets/fashion-mnist
if [ ! -f "$FMNIST_DIR/train-images-idx3-ubyte.gz" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian package dataset-fashion-mnist (offline Fashion-MNIST)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
    else
        echo "setup: warning: $FMNIST_DIR missing and apt-get unavailable (not root?);" \
             "pass --data-dir to a Fashion-MNIST directory or install dataset-fashion-mnist" >&2
    fi
fi

# SLURM and munge for the single-node SLURM test (tests/test_slurm.py skips, saying why, without them)
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian packages slurm-wlm and munge (the SLURM test)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
    else
        echo "setup: note: slurm-wlm/munge missing and apt-get unavailable (not root?);" \
             "the SLURM test will be skipped" >&2
    fi
fi

# Chromium for the browser test of the HTML report (tests/test_report.py skips, saying why, without it)
if ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian package chromium (the report's browser test)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "setup: note: chromium missing and apt-get unavailable (not root?);" \
             "the report's browser test will be skipped" >&2
    fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv
fi
# Re-install only when pyproject.toml changed since the last successful install.
stamp=.venv/.rstsweep-installed
if [ ! -f "$stamp" ] || ! cmp -s pyproject.toml "$stamp"; then
    echo "setup: installing rstsweep and its dependencies into .venv (a few minutes the first time)"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'  # everything: run, trackers, sql, the test tools
    cp pyproject.toml "$stamp"
fi
echo "setup: ready ($(.venv/bin/python -c 'import torch, torchvision, ray; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, ray {ray.__version__}")'))"
