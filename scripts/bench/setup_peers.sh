#!/usr/bin/env bash
# The peer servers of the benchmark, each in its own virtual environment (their pins clash
# with ours and with each other): .venv-bench/<peer> for litserve, bentoml and ray.
#
#   bash scripts/bench/setup_peers.sh              # every peer (a few minutes each)
#   bash scripts/bench/setup_peers.sh ray          # one
#   LOCK=1 bash scripts/bench/setup_peers.sh       # re-resolve, rewrite scripts/bench/peers/*.lock
#   PROJECT_PYTHON=/path/to/venv/bin/python ...    # the project venv, if not .venv
#
# Run LOCK=1 after the project's dependencies change (a lock then disagrees with them).
#
# torch==2.13.0 goes in first, exactly pinned, so that no peer pulls a CUDA build; then the
# framework at its exact version with the project's runtime dependencies (the servers run
# from the repository root, so `app` and `model` are imported from the working tree, not
# installed). With a lock file present every package is held to the committed lock.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
PIP=(--quiet --disable-pip-version-check)
declare -A FRAMEWORK=(
    [litserve]="litserve==0.2.19"
    [bentoml]="bentoml==1.4.40"
    [ray]="ray[serve]==2.60.0"
)
# The project's own runtime dependencies (app.imaging imports app.digits, app.limits,
# app.settings...: whatever it needs), each at the version of the project's venv, so that every
# system decodes, preprocesses and encodes with the same libraries
PROJECT_PYTHON="${PROJECT_PYTHON:-.venv/bin/python}"
[ -x "$PROJECT_PYTHON" ] || { echo "no $PROJECT_PYTHON: set PROJECT_PYTHON to the project venv's python" >&2; exit 2; }
mapfile -t PROJECT < <("$PROJECT_PYTHON" scripts/bench/peers/requirements.py)

setup() {
    local peer=$1 venv=.venv-bench/$1 lock=scripts/bench/peers/$1.lock
    [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
    local constraints=()
    if [ -z "${LOCK:-}" ] && [ -f "$lock" ]; then constraints=(-c "$lock"); fi
    "$venv/bin/pip" install "${PIP[@]}" "${constraints[@]}" torch==2.13.0
    "$venv/bin/pip" install "${PIP[@]}" "${constraints[@]}" "${FRAMEWORK[$peer]}" "${PROJECT[@]}"
    if [ -n "${LOCK:-}" ] || [ ! -f "$lock" ]; then
        "$venv/bin/pip" freeze --exclude-editable >"$lock"
    fi
    "$venv/bin/python" -c "import torch; assert torch.__version__ == '2.13.0+cpu', torch.__version__"
    echo "$peer: $venv ready ($("$venv/bin/pip" show "${FRAMEWORK[$peer]%%[=[]*}" | sed -n 's/^Version: //p'))"
}

peers=("$@")
[ ${#peers[@]} -gt 0 ] || peers=(litserve bentoml ray)
for peer in "${peers[@]}"; do
    [ -n "${FRAMEWORK[$peer]:-}" ] || { echo "unknown peer $peer (${!FRAMEWORK[*]})" >&2; exit 2; }
    setup "$peer"
done
