#!/usr/bin/env bash
# The test command: set up .venv with the dev extras, install the tools that the
# deployment and browser tests drive (Prometheus, hadolint, Chromium... when run as root),
# then lint, check formatting and run the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export MNIST_DIR="${MNIST_DIR:-$(pwd)/../shared/data/mnist}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
PIP=(--quiet --disable-pip-version-check)

[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
source .venv/bin/activate
pip install "${PIP[@]}" torch==2.13.0  # the exact pin first: never a CUDA build by accident
pip install "${PIP[@]}" -c constraints-dev.txt -e '.[dev]'  # dev tools at exact versions

if [ "$(id -u)" = 0 ]; then
    for tools in .ci/*-tools.sh; do bash "$tools"; done
else
    echo "not root: system tools not installed (their tests skip, or fail when CI=true)"
fi

ruff check .
ruff format --check .
status=0
python -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
    echo "pytest collected no tests: failing" >&2
fi
exit "$status"
