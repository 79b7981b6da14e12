#!/usr/bin/env bash
# The test command: set up .venv from requirements/dev.lock, install the tools that the
# deployment and browser tests drive (Prometheus, hadolint, Chromium... when run as root),
# then lint, check formatting and run the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export MNIST_DIR="${MNIST_DIR:-$(pwd)/../shared/data/mnist}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

# shellcheck source=scripts/install.sh
source scripts/install.sh
install_locked requirements/dev.lock  # the service's versions, and the dev tools', with hashes
# shellcheck disable=SC1091
source .venv/bin/activate

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
