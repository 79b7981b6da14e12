#!/usr/bin/env bash
# The peer servers of the benchmark, each in its own virtual environment (their pins clash
# with ours and with each other): .venv-bench/<peer> for litserve, bentoml and ray.
#
#   bash scripts/bench/setup_peers.sh              # every peer (a few minutes each)
#   bash scripts/bench/setup_peers.sh ray          # one
#   LOCK=1 bash scripts/bench/setup_peers.sh       # re-resolve, rewrite scripts/bench/peers/*.lock
#
# torch==2.13.0 goes in first, exactly pinned, so that no peer pulls a CUDA build; then the
# framework at its exact version, and what app.imaging imports (the servers run from the
# repository root, so `app` is imported from the working tree, not installed). With a lock
# file present every package is held at the version of the committed lock.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
PIP=(--quiet --disable-pip-version-check)
declare -A FRAMEWORK=(
    [litserve]="litserve==0.2.19"
    [bentoml]="bentoml==1.4.40"
    [ray]="ray[serve]==2.60.0"
)
# app.imaging (and app.errors, which it imports), at the project venv's versions
IMAGING=(numpy==2.4.6 pillow==13.0.0 isal==1.9.1 orjson==3.13.0 fastapi prometheus-client)

setup() {
    local peer=$1 venv=.venv-bench/$1 lock=scripts/bench/peers/$1.lock
    [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
    local constraints=()
    if [ -z "${LOCK:-}" ] && [ -f "$lock" ]; then constraints=(-c "$lock"); fi
    "$venv/bin/pip" install "${PIP[@]}" "${constraints[@]}" torch==2.13.0
    "$venv/bin/pip" install "${PIP[@]}" "${constraints[@]}" "${FRAMEWORK[$peer]}" "${IMAGING[@]}"
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
