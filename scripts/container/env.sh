# Sourced by the scripts in scripts/container/: rootful podman configured for this kind of host.
# - runc, not crun: crun refuses hybrid cgroup layouts (cgroup v1 controllers + a v2 mount).
# - default_ulimits: podman's default open-files limit may exceed the host's hard limit.
# - netavark (with aardvark-dns, so compose services find each other by name), not CNI.
# The file is generated (the limit is the machine's) into the cache folder, which also keeps
# the torch wheel index; the images themselves stay in podman's own storage between runs.
VAE_CI_CACHE="${VAE_CI_CACHE:-/var/cache/vae-serve-ci}"
BASE_IMAGE="${BASE_IMAGE:-localhost/vae-serve-base:bookworm}"
IMAGE="${IMAGE:-localhost/vae-serve:ci}"
PROMETHEUS_IMAGE="${PROMETHEUS_IMAGE:-localhost/vae-serve-prometheus:debian}"
mkdir -p "$VAE_CI_CACHE"
export CONTAINERS_CONF="$VAE_CI_CACHE/containers.conf"
cat >"$CONTAINERS_CONF.tmp" <<CONF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]

[engine]
runtime = "runc"

[network]
network_backend = "netavark"
CONF
mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"

# True when image $1 exists and was made from the file $2 as it is now (label vae.source).
image_current() {
    [ "$(podman image inspect --format '{{index .Labels "vae.source"}}' "$1" 2>/dev/null)" \
        = "$(sha256sum "$2" | cut -c1-16)" ]
}
