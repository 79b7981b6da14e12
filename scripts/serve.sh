#!/usr/bin/env bash
# Set up a virtual environment (first run only) and serve the shipped model on
# http://127.0.0.1:8000 (override with VAE_HOST / VAE_PORT and the other VAE_* settings).
# PyTorch: the CPU build by default (PyPI's Linux wheel is the CUDA one, several GB more);
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 for CUDA 12.8, TORCH_INDEX_URL=
# (empty) for whatever PyPI alone gives.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-index.sh
source scripts/torch-index.sh

if [ ! -x .venv/bin/vae-serve ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "${TORCH_INDEX[@]}" torch==2.13.0
    .venv/bin/pip install --quiet --disable-pip-version-check -e .
fi
exec .venv/bin/vae-serve "$@"
