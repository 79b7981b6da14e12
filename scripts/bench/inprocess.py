"""The in-process limit: the work of each endpoint in a plain loop, with no HTTP.

Same TorchScript file, same preprocessing and PNG encoding (app.imaging), one torch thread.
With `batch` > 1 each loop turn serves `batch` requests with one batched model call: the
best that dynamic batching could do at that concurrency (each request's latency is the turn).
"""

import secrets
import time
from collections.abc import Callable

import numpy as np
import orjson
import torch

from app.imaging import images_png, preprocess
from scripts.bench.config import Workload
from scripts.bench.stats import latency_summary

MAX_PIXELS = 16_000_000  # vae-serve's default VAE_MAX_IMAGE_PIXELS
Responses = list[bytes]


def make_turn(
    module: torch.jit.ScriptModule, workload: Workload, body: bytes | None, batch: int
) -> Callable[[], Responses]:
    """A function that serves `batch` requests of `workload` and returns their responses."""
    latent_dim = int(module.latent_dim)
    route, _, query = workload.path.partition("?")
    n = int(query.partition("n=")[2] or 1)

    def sample() -> Responses:
        z = torch.cat(
            [
                torch.randn(latent_dim * n, generator=torch.Generator().manual_seed(seed))
                for seed in (secrets.randbits(63) for _ in range(batch))
            ]
        )
        images = module.decode(z.view(batch * n, latent_dim)).numpy()
        return [images_png(images[i * n : (i + 1) * n]) for i in range(batch)]

    def inputs() -> torch.Tensor:
        assert body is not None
        return torch.from_numpy(np.stack([preprocess(body, MAX_PIXELS) for _ in range(batch)]))

    def encode() -> Responses:
        mu, sigma = module.encode(inputs())
        kl = module.kl_divergence(mu, sigma)
        return [
            orjson.dumps(
                {
                    "mu": mu[i].tolist(),
                    "sigma": sigma[i].tolist(),
                    "latent_dim": latent_dim,
                    "kl": kl[i].item(),
                }
            )
            for i in range(batch)
        ]

    def reconstruct() -> Responses:
        images = module.reconstruct(inputs()).numpy()
        return [images_png(images[i : i + 1]) for i in range(batch)]

    return {"/sample": sample, "/encode": encode, "/reconstruct": reconstruct}[route]


def measure(
    module: torch.jit.ScriptModule,
    workload: Workload,
    body: bytes | None,
    batch: int,
    duration_s: float,
) -> dict:
    """Throughput and latency of `batch` requests per loop turn for `duration_s` seconds."""
    turn = make_turn(module, workload, body, batch)
    with torch.inference_mode():
        for _ in range(2):  # TorchScript profiles its first calls
            turn()
        latencies, cpu0, start = [], time.process_time(), time.perf_counter()
        while (now := time.perf_counter()) - start < duration_s:
            turn()
            latencies.append((time.perf_counter() - now) * 1000)
        wall = time.perf_counter() - start
    requests = len(latencies) * batch
    return {
        "rps": round(requests / wall, 1),
        "requests": requests,
        "errors": 0,
        "cpu_percent": round(100 * (time.process_time() - cpu0) / wall, 1),
        **latency_summary(latencies),
    }
