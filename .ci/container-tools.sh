#!/usr/bin/env bash
# Installs what the container tests (tests/deploy/test_container*.py) drive on a fresh Debian
# machine, as root: rootful podman with runc, netavark and aardvark-dns, buildah, debootstrap
# (the local base image), HAProxy (the load balancer of the two-replica test) and
# podman-compose. Idempotent. The images are built by scripts/container/build.sh, which the
# tests call (layers and the base image are cached by podman between runs).
set -euo pipefail

packages=(podman buildah runc conmon catatonit netavark aardvark-dns iptables uidmap
    slirp4netns fuse-overlayfs debootstrap haproxy)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Exact version: podman-compose's translation of compose keys to podman flags changes.
python -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    podman-compose==1.6.0
podman --version
