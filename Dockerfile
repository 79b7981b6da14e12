# vae-serve image: the REST service with the shipped MNIST VAE baked in, run as a non-root user.
# CPU PyTorch by default; for CUDA: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# (the CUDA wheels bring their own CUDA libraries; the host needs only the NVIDIA driver).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# binutils: `strip` for torch's libraries (a build-stage tool; the runtime stage has none).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
# torch without what serving a TorchScript file never touches (-430 MB with the removals
# below; figures in docs/deploy.md): C++ headers (include/), test suites and their libraries,
# bin/ but the shared-memory manager that `import torch` checks for, the torch.compile and
# ONNX stacks, and the symbol tables of its shared libraries (backtraces keep the dynamic
# symbols).
RUN python -m venv /opt/venv \
    && pip install --no-deps --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && t="${site:?}/torch" \
    && find "${t:?}"/bin -mindepth 1 -maxdepth 1 ! -name torch_shm_manager ! -name upgrader_models \
        -exec rm -rf {} + \
    && rm -rf "${t:?}"/include "${t:?}"/test "${t:?}"/_inductor "${t:?}"/_dynamo \
        "${t:?}"/onnx "${t:?}"/lib/*test*.so "${t:?}"/lib/libbackend_with_compiler.so \
        "${t:?}"/lib/libaoti_custom_ops.so "${site:?}"/functorch \
    && find "${t:?}"/lib -name '*.so*' -exec strip --strip-unneeded {} +
WORKDIR /src
# Every other package at the version and hashes of the lock (scripts/lock.sh writes it).
COPY requirements/service.lock ./requirements/
RUN pip install --require-hashes --no-deps -r requirements/service.lock && pip check \
    && python -c 'import torch; torch.jit.load'
COPY pyproject.toml README.md ./
COPY app ./app
COPY model ./model
COPY vae_client ./vae_client
# Fail the build, rather than ship an image without its model. Then remove the packages the
# service never imports (torch.compile's sympy, networkx and jinja2, torch's checkpoint and
# hub helpers fsspec and filelock, uvicorn's reload and websocket extras) and pip itself;
# the test suites and type stubs inside packages; Pillow's AVIF codec (the service refuses
# AVIF; Pillow then reports it unsupported); the symbol tables of the other shared libraries
# (not of those auditwheel patched with an RPATH, which strip corrupts); all bytecode. Last,
# `vae-serve --check` serves one request to each route in-process (the build fails unless
# all answer), which compiles the bytecode of exactly the modules serving imports (sizes:
# docs/deploy.md). torchgen and torch.testing stay: `import torch` imports both.
RUN test -f model/vae_mnist.pt \
    && pip install --no-deps --no-build-isolation --no-compile . \
    && pip uninstall --yes sympy mpmath networkx jinja2 MarkupSafe fsspec filelock \
        watchfiles websockets pip setuptools \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && find "${site:?}" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} + \
    && find "${site:?}" -name '*.pyi' -delete \
    && rm "${site:?}"/PIL/_avif.*.so "${site:?}"/pillow.libs/libavif-*.so* \
    && find "${site:?}" -name '*.so*' ! -path '*/torch/lib/*' -print0 \
        | while IFS= read -r -d '' so; do \
            readelf -d "$so" | grep -q 'R[UN]*PATH' || strip --strip-unneeded "$so"; \
        done \
    && VAE_LOG_FORMAT=text vae-serve --check

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 vae \
    && useradd --system --uid 10001 --gid vae --no-create-home --shell /usr/sbin/nologin vae
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    VAE_HOST=0.0.0.0 \
    VAE_PORT=8000 \
    VAE_LOG_FORMAT=json
WORKDIR /srv
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('VAE_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["vae-serve"]
