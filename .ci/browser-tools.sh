#!/usr/bin/env bash
# Installs what tests/demo needs on a fresh Debian machine (run as root): the system Chromium
# and the Python playwright package that drives it. Idempotent and quiet. Playwright's own
# browser download (`playwright install`) is never used: the tests point it at /usr/bin/chromium.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

if ! python -c "import playwright.sync_api" >/dev/null 2>&1; then
  python -m pip install --quiet --disable-pip-version-check -c constraints-dev.txt playwright
fi

chromium --version 2>/dev/null | head -n 1
