#!/usr/bin/env bash
# Makes the local Python base image with debootstrap (no registry needed): Debian bookworm
# minbase + Python 3.11, trimmed, imported as $BASE_IMAGE. Skipped when the image exists
# (podman's storage keeps it between runs: rebuilding it rebuilds every layer above it, so
# after editing this script run it with --force). The Debian mirror is the
# machine's own, read from its apt sources.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/container/env.sh
source "$here/env.sh"

if [ "${1:-}" != --force ] && podman image exists "$BASE_IMAGE"; then
    echo "base image $BASE_IMAGE: cached"
    exit 0
fi

mirror() {
    # deb822 (.sources: "URIs:") first, then one-line "deb URI suite ..." entries.
    local uri
    uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources \
        2>/dev/null | grep -v security | head -n 1)
    [ -n "$uri" ] || uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
        | grep -v security | head -n 1)
    [ -n "$uri" ] || { echo "no Debian mirror in /etc/apt/sources.list(.d)" >&2; exit 1; }
    echo "$uri"
}

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
start=$SECONDS
debootstrap --variant=minbase \
    --include=python3.11,python3.11-venv,python3-distutils,python-is-python3,ca-certificates \
    bookworm "$rootfs" "$(mirror)" >"$VAE_CI_CACHE/debootstrap.log" 2>&1 \
    || { tail -n 30 "$VAE_CI_CACHE/debootstrap.log" >&2; exit 1; }
# What an image does not need: apt lists and caches, docs, man pages, locales but C.UTF-8.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} +
tar -C "$rootfs" -c . | podman import --quiet --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
echo "base image $BASE_IMAGE: built in $((SECONDS - start)) s, $(podman image inspect --format '{{.Size}}' "$BASE_IMAGE") bytes"
