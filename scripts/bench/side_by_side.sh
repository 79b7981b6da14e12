#!/usr/bin/env bash
# A/B of two checkouts of vae-serve, side by side: both servers share CPU 0 and are loaded
# at the same time by two wrk processes on CPU 1, so a slow moment of this shared VM hits
# both alike and the req/s ratio B/A is their ratio of CPU per request (an A/A check gave
# 0.989-0.998 where sequential runs of one commit varied by +-25 %). Not for changes in
# thread structure: the scheduler shares the core per thread.
#
#   git worktree add /tmp/base HEAD~1
#   bash scripts/bench/side_by_side.sh /tmp/base . '/sample?n=1'
#   bash scripts/bench/side_by_side.sh /tmp/base . /encode digit.png image/png
#   bash scripts/bench/side_by_side.sh . .:VAE_ACCESS_LOG=false '/sample?n=1'
#
# A and B: a checkout, optionally with settings (dir:VAR=value,VAR=value). Environment:
# ROUNDS (3), C (connections per server, 32), D (seconds per round, 8).
set -euo pipefail
A=$1 B=$2 URL_PATH=$3 BODY=${4:-} TYPE=${5:-}
ROUNDS=${ROUNDS:-3} C=${C:-32} D=${D:-8}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
MODEL=${VAE_MODEL_PATH:-$ROOT/model/vae_mnist.pt}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

SCRIPT=$WORK/request.lua
if [ -n "$BODY" ]; then
  echo "wrk.method = 'POST'; local f = assert(io.open('$(realpath "$BODY")', 'rb'))" > "$SCRIPT"
  echo "wrk.body = f:read('*a'); f:close(); wrk.headers['Content-Type'] = '$TYPE'" >> "$SCRIPT"
else
  echo "wrk.method = 'GET'" > "$SCRIPT"
fi

start() {  # checkout[:settings] port
  local dir=${1%%:*} settings=()
  [[ $1 == *:* ]] && IFS=, read -r -a settings <<< "${1#*:}"
  dir=$(realpath "$dir")
  (cd "$dir" && exec env "${settings[@]}" VAE_MODEL_PATH="$MODEL" OMP_NUM_THREADS=1 PYTHONPATH="$dir" \
    taskset -c 0 "$PYTHON" -m app.cli --port "$2" > "$WORK/server.$2.log" 2>&1) &
}

ready() {
  for _ in $(seq 240); do curl -sf "http://127.0.0.1:$1/readyz" > /dev/null && return; sleep 0.25; done
  echo "server on port $1 not ready: $(tail -3 "$WORK/server.$1.log")" >&2
  exit 1
}

load() {  # port seconds output
  taskset -c 1 wrk -t1 -c"$C" -d"$2"s -s "$SCRIPT" "http://127.0.0.1:$1$URL_PATH" > "$3"
}

PORT_A=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PORT_B=$((PORT_A + 1))
start "$A" "$PORT_A"
start "$B" "$PORT_B"
ready "$PORT_A"
ready "$PORT_B"
echo "A = $A, B = $B, $URL_PATH, c = $C per server, $D s per round"
for round in $(seq "$ROUNDS"); do
  load "$PORT_A" 2 /dev/null & WAITING=$!
  load "$PORT_B" 2 /dev/null; wait $WAITING  # warm-up, together
  load "$PORT_A" "$D" "$WORK/a" & WAITING=$!
  load "$PORT_B" "$D" "$WORK/b"; wait $WAITING
  a=$(awk '/Requests\/sec/ {print $2}' "$WORK/a")
  b=$(awk '/Requests\/sec/ {print $2}' "$WORK/b")
  failed=$(cat "$WORK/a" "$WORK/b" | grep -c "Non-2xx" || true)
  echo "round $round: A $a req/s, B $b req/s, B/A $("$PYTHON" -c "print(f'{$b / $a:.3f}')")" \
    "(responses not 2xx in $failed of the two runs)"
done
