"""The work every peer does for a batch of requests: what vae-serve and TorchServe's handler do.

Same TorchScript file (read with model.artifact.load), one torch thread, app.imaging's
preprocessing and PNG encoding. A batch may mix operations; each operation's rows go through
the model as one call. Imports torch, numpy, orjson, app.imaging and model.artifact only, so
it runs in each peer's own virtual environment.
"""

from dataclasses import dataclass

import numpy as np
import orjson
import torch

from app.imaging import images_png, preprocess
from model import artifact

MAX_PIXELS = 16_000_000  # vae-serve's default VAE_MAX_IMAGE_PIXELS
PNG = "image/png"
JSON = "application/json"
OPERATIONS = ("sample", "encode", "reconstruct")


@dataclass(frozen=True)
class Job:
    """One request, whatever the framework: `op` on `n` samples or on the image `body`."""

    op: str  # one of OPERATIONS
    n: int = 1  # samples (sample only)
    body: bytes = b""  # the raw image upload (encode, reconstruct)


@dataclass(frozen=True)
class Answer:
    body: bytes
    media_type: str


def request_of(path: str, n: str | None, body: bytes) -> Job:
    """The Job of an HTTP request to /sample?n=, /encode or /reconstruct."""
    op = path.rstrip("/").rsplit("/", 1)[-1]
    if op not in OPERATIONS:
        raise ValueError(f"unknown operation {path!r}")
    return Job(op, int(n or 16) if op == "sample" else 1, body)


class VAEWork:
    """The loaded model and the three operations, each on a list of requests."""

    def __init__(self, model_path: str) -> None:
        torch.set_num_threads(1)  # as vae-serve's default VAE_TORCH_THREADS
        self.module = artifact.load(model_path)[0]
        self.latent_dim = int(self.module.latent_dim)

    def run(self, requests: list[Job]) -> list[Answer]:
        """Answers in the order of `requests`, one model call per operation present."""
        answers: list[Answer | None] = [None] * len(requests)
        with torch.inference_mode():
            for op in OPERATIONS:
                rows = [i for i, r in enumerate(requests) if r.op == op]
                if rows:
                    done = getattr(self, op)([requests[i] for i in rows])
                    for i, answer in zip(rows, done, strict=True):
                        answers[i] = answer
        return answers  # type: ignore[return-value]

    def sample(self, requests: list[Job]) -> list[Answer]:
        counts = [r.n for r in requests]
        images = self.module.decode(torch.randn(sum(counts), self.latent_dim)).numpy()
        bounds = np.cumsum([0, *counts])
        spans = zip(bounds[:-1], bounds[1:], strict=True)
        return [Answer(images_png(images[a:b]), PNG) for a, b in spans]

    @staticmethod
    def inputs(requests: list[Job]) -> torch.Tensor:
        return torch.from_numpy(np.stack([preprocess(r.body, MAX_PIXELS) for r in requests]))

    def encode(self, requests: list[Job]) -> list[Answer]:
        mu, sigma = self.module.encode(self.inputs(requests))
        kl = self.module.kl_divergence(mu, sigma)
        return [
            Answer(
                orjson.dumps(
                    {
                        "mu": m.tolist(),
                        "sigma": s.tolist(),
                        "latent_dim": self.latent_dim,
                        "kl": k.item(),
                    }
                ),
                JSON,
            )
            for m, s, k in zip(mu, sigma, kl, strict=True)
        ]

    def reconstruct(self, requests: list[Job]) -> list[Answer]:
        images = self.module.reconstruct(self.inputs(requests)).numpy()
        return [Answer(images_png(images[i : i + 1]), PNG) for i in range(len(images))]
