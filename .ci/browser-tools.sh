#!/usr/bin/env bash
# Installs what tests/demo needs on a fresh Debian machine (run as root): the system Chromium
# and a check for the Python playwright package that drives it (from requirements/dev.lock).
# Idempotent and quiet. Playwright's own browser download (`playwright install`) is never
# used: the tests point it at /usr/bin/chromium.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

# The Python playwright package comes from requirements/dev.lock (scripts/test.sh).
python -c "import playwright.sync_api"

chromium --version 2>/dev/null | head -n 1
