#!/usr/bin/env bash
# Builds $PROMETHEUS_IMAGE (prometheus.Containerfile: Debian's prometheus package on the local
# base image) unless it exists, made from the Containerfile as it is now; --force rebuilds it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/container/env.sh
source "$here/env.sh"
"$here/base-image.sh"

containerfile="$here/prometheus.Containerfile"
if [ "${1:-}" != --force ] && image_current "$PROMETHEUS_IMAGE" "$containerfile"; then
    echo "prometheus image $PROMETHEUS_IMAGE: cached"
    exit 0
fi
start=$SECONDS
podman build --format docker --tag "$PROMETHEUS_IMAGE" --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --label "vae.source=$(sha256sum "$containerfile" | cut -c1-16)" \
    --file "$containerfile" "$here" >"$VAE_CI_CACHE/prometheus-build.log" 2>&1 \
    || { tail -n 30 "$VAE_CI_CACHE/prometheus-build.log" >&2; exit 1; }
echo "prometheus image $PROMETHEUS_IMAGE: built in $((SECONDS - start)) s"
