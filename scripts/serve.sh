#!/usr/bin/env bash
# Set up .venv from requirements/service.lock (again only when the lock changes) and serve
# the shipped model on http://127.0.0.1:8000 (override with VAE_HOST / VAE_PORT and the other VAE_* settings).
# PyTorch: the CPU build by default (PyPI's Linux wheel is the CUDA one, several GB more);
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 for CUDA 12.8, TORCH_INDEX_URL=
# (empty) for whatever PyPI alone gives.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/install.sh
source scripts/install.sh
install_locked requirements/service.lock
exec .venv/bin/vae-serve "$@"
