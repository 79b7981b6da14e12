#!/usr/bin/env bash
# The Open Inference Protocol clients that tests/oip/test_clients.py drives, in their own
# venv (.venv-oip-clients, git-ignored): tritonclient needs greenlet < 3.4 and kserve brings
# its own FastAPI/gRPC stack, which clash with the project's pins. PyPI only; no root needed
# (test_clients.py runs this itself when the venv is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-oip-clients
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import tritonclient.http, kserve" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    'tritonclient[http]==2.73.0' 'kserve==0.21.0'
fi
"$VENV/bin/python" -c "import tritonclient.http, kserve"
