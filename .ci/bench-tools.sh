#!/usr/bin/env bash
# Tools the benchmark smoke test (tests/bench) needs beyond the Python packages: wrk.
set -euo pipefail
if ! command -v wrk >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
command -v wrk >/dev/null  # installed (wrk --version exits 1, so it is no check)
