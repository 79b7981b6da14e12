#!/usr/bin/env bash
# Builds the project's Dockerfile with rootful podman, as CI does on a machine without a
# registry, then fails unless the torch in the image is the CPU build:
# - the base is the local debootstrap image (base-image.sh), passed as PYTHON_IMAGE;
# - torch (and its dependencies) come from a static PEP 503 index in the cache folder,
#   filled by `pip download` (pip's configured find-links and indexes), mounted read-only
#   at /mnt (a folder every base has, so the mount leaves no mount point behind) and passed
#   as TORCH_INDEX_URL;
# - the host's CA bundle (with this host's extra CAs, which HTTPS to PyPI needs) is mounted
#   over the base's during the RUN steps only (Debian's pip reads that file), so the image
#   users get keeps the base's own bundle.
# The Dockerfile is used as it is: elsewhere `docker build .` takes its public defaults.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=scripts/container/env.sh
source "$here/env.sh"
"$here/base-image.sh"

torch_version=$(sed -n 's/^ARG TORCH_VERSION=//p' "$root/Dockerfile")
index="$VAE_CI_CACHE/torch-index"
wheels="$VAE_CI_CACHE/torch-wheels"
if ! compgen -G "$wheels/torch-$torch_version[+-]*.whl" >/dev/null; then
    python -m pip download --quiet --only-binary=:all: --dest "$wheels" "torch==$torch_version"
fi
# The index: one folder per normalised project name (PEP 503) with the wheels and a link page.
rm -rf "$index" && mkdir -p "$index"
echo '<!DOCTYPE html><html><body>' >"$index/index.html"
for wheel in "$wheels"/*.whl; do
    file=$(basename "$wheel")
    project=$(echo "${file%%-*}" | tr '[:upper:]' '[:lower:]' | sed -E 's/[-_.]+/-/g')
    if [ ! -d "$index/$project" ]; then
        mkdir "$index/$project"
        echo "<a href=\"$project/\">$project</a>" >>"$index/index.html"
    fi
    ln "$wheel" "$index/$project/$file"
    echo "<a href=\"$file#sha256=$(sha256sum "$wheel" | cut -d' ' -f1)\">$file</a>" \
        >>"$index/$project/index.html"
done

start=$SECONDS
args=(--format docker
    --build-arg PYTHON_IMAGE="$BASE_IMAGE"
    --build-arg TORCH_INDEX_URL=file:///mnt
    --volume "$index:/mnt:ro"
    --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro
    "$@")
# The build stage is tagged too ($IMAGE-build), so that its layers (the torch one above all)
# stay referenced: the prune below then removes only what earlier builds left untagged
# (~1 GB per change of the sources), not the cache.
{ podman build "${args[@]}" --target build --tag "$IMAGE-build" "$root" \
    && podman build "${args[@]}" --tag "$IMAGE" "$root"; } >"$VAE_CI_CACHE/build.log" 2>&1 \
    || { tail -n 40 "$VAE_CI_CACHE/build.log" >&2; echo "podman build failed" >&2; exit 1; }
podman image prune --force >/dev/null

# The CPU build: a "+cpu" local version and no CUDA runtime; anything else is a loud failure.
podman run --rm --network none --no-healthcheck --entrypoint python "$IMAGE" -c '
import sys, torch
cpu = torch.version.cuda is None and torch.__version__.endswith("+cpu")
print("torch", torch.__version__, "cuda", torch.version.cuda)
sys.exit(0 if cpu else "the image holds a CUDA build of torch, not the CPU one")'
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "image $IMAGE: built in $((SECONDS - start)) s, $((size / 1000000)) MB"
