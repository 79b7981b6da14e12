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
# shellcheck source=scripts/torch-index.sh
source scripts/torch-index.sh
# The exact pin first, from the CPU index unless TORCH_INDEX_URL says otherwise: never a CUDA
# build by accident. Skipped once installed: the index is then not asked again.
python -c 'import sys, torch; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null \
    || pip install "${PIP[@]}" "${TORCH_INDEX[@]}" torch==2.13.0
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
