#!/usr/bin/env bash
# Set up a virtual environment (first run only) and serve the shipped model on
# http://127.0.0.1:8000 (override with VAE_HOST / VAE_PORT and the other VAE_* settings).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/vae-serve ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check torch==2.13.0
    .venv/bin/pip install --quiet --disable-pip-version-check -e .
fi
exec .venv/bin/vae-serve "$@"
