#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml with pip-tools (pip-compile --generate-hashes):
#   requirements/service.lock  what the service runs on (serve.sh, the image), with the otel extra
#                              (the OpenTelemetry SDK and OTLP exporter: idle unless OTEL_* asks)
#   requirements/dev.lock      the same versions, plus the dev and train extras (test.sh, CI)
# Every package with an exact version and its hashes, except torch: its exact pin and the CPU
# index stay in serve.sh, test.sh and the Dockerfile (torch-index.sh), so a CUDA build can be
# chosen with TORCH_INDEX_URL; torch's own dependencies are locked here.
# Deliberate updates only: `./scripts/lock.sh` keeps every pin that still satisfies
# pyproject.toml; `./scripts/lock.sh --upgrade` (or `--upgrade-package NAME`) moves them.
# requirements/choices.txt holds the deliberate exceptions (an older release, and why).
# Read the diff, then record what moved in docs/CHANGELOG.md.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-lock
if [ ! -x "$VENV/bin/pip-compile" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check pip==26.3 pip-tools==7.7.0
fi
# --unsafe-package torch: torch is left out (commented); it replaces pip-tools' default unsafe
# list, so setuptools (the build backend, via --build-deps-for editable) is pinned like the rest.
compile=("$VENV/bin/pip-compile" --quiet --generate-hashes --strip-extras --no-emit-index-url
    --no-emit-find-links --unsafe-package torch --build-deps-for editable
    --no-header --annotation-style line --constraint requirements/choices.txt "$@")
"${compile[@]}" --extra otel --output-file requirements/service.lock pyproject.toml
"${compile[@]}" --extra otel --extra dev --extra train --constraint requirements/service.lock \
    --output-file requirements/dev.lock pyproject.toml
