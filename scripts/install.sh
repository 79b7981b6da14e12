#!/usr/bin/env bash
# Sourced by serve.sh and test.sh: install_locked LOCK makes .venv match LOCK (one of
# requirements/*.lock, written by scripts/lock.sh) and installs the project in it, editable.
# torch first, at its exact pin from the index that torch-index.sh chooses (the CPU build by
# default); then every other package at the lock's version, checked against the lock's hashes.
# A venv already installed from the same lock is left alone (a stamp holds the lock's hash).
# shellcheck source=scripts/torch-index.sh
source "$(dirname "${BASH_SOURCE[0]}")/torch-index.sh"
TORCH_VERSION=2.13.0

install_locked() {
    local lock="$1" pip=(.venv/bin/pip install --quiet --disable-pip-version-check)
    local stamp=.venv/.installed-lock digest
    digest="$(sha256sum "$lock" pyproject.toml | sha256sum | cut -d' ' -f1) $lock"
    [ -x .venv/bin/python ] || python3 -m venv .venv
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
        return 0
    fi
    .venv/bin/python -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" \
        2>/dev/null || "${pip[@]}" --no-deps "${TORCH_INDEX[@]}" "torch==$TORCH_VERSION"
    "${pip[@]}" --require-hashes --no-deps -r "$lock"
    "${pip[@]}" --no-deps --no-build-isolation -e .
    .venv/bin/pip check --disable-pip-version-check >/dev/null
    echo "$digest" >"$stamp"
}
