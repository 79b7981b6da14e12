"""TorchServe handler for the VAE: the same outputs as vae-serve, batched by TorchServe.

Requests go to /predictions/vae, which passes no query string to handlers, so the operation
is in headers: X-Op: sample with X-N: 16 -> PNG grid of n samples; X-Op: encode with a raw
image body -> JSON {mu, sigma, latent_dim, kl}; X-Op: reconstruct -> PNG. One TorchServe
batch may mix ops: each op's rows run as one model call. Preprocessing and PNG encoding
are app.imaging's, as in vae-serve.
"""

import os

import numpy as np
import orjson
import torch

from app.imaging import images_png, preprocess
from model import artifact

MAX_PIXELS = 16_000_000


def header(context, idx: int, name: str, default: str) -> str:
    value = context.get_request_header(idx, name)
    return value.decode() if isinstance(value, bytes | bytearray) else value or default


class VAEHandler:
    def initialize(self, context) -> None:
        torch.set_num_threads(1)  # as vae-serve's default VAE_TORCH_THREADS
        model_dir = context.system_properties["model_dir"]
        path = os.path.join(model_dir, context.manifest["model"]["serializedFile"])
        self.module = artifact.load(path)[0]
        self.latent_dim = int(self.module.latent_dim)

    def handle(self, data: list[dict], context) -> list[bytes]:
        ops = [header(context, i, "X-Op", "encode") for i in range(len(data))]
        out: list[bytes] = [b""] * len(data)
        with torch.inference_mode():
            for op in ("sample", "encode", "reconstruct"):
                rows = [i for i, o in enumerate(ops) if o == op]
                if rows:
                    run = getattr(self, op)
                    for i, body in zip(rows, run(data, rows, context), strict=True):
                        out[i] = body
                        kind = "application/json" if op == "encode" else "image/png"
                        context.set_response_content_type(i, kind)
        return out

    def sample(self, data: list[dict], rows: list[int], context) -> list[bytes]:
        counts = [int(header(context, i, "X-N", "16")) for i in rows]
        images = self.module.decode(torch.randn(sum(counts), self.latent_dim)).numpy()
        bounds = np.cumsum([0, *counts])
        return [images_png(images[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    @staticmethod
    def inputs(data: list[dict], rows: list[int]) -> torch.Tensor:
        bodies = [data[i].get("body") or data[i].get("data") for i in rows]
        return torch.from_numpy(np.stack([preprocess(bytes(b), MAX_PIXELS) for b in bodies]))

    def encode(self, data: list[dict], rows: list[int], context) -> list[bytes]:
        mu, sigma = self.module.encode(self.inputs(data, rows))
        kl = self.module.kl_divergence(mu, sigma)
        return [
            orjson.dumps(
                {
                    "mu": m.tolist(),
                    "sigma": s.tolist(),
                    "latent_dim": self.latent_dim,
                    "kl": k.item(),
                }
            )
            for m, s, k in zip(mu, sigma, kl, strict=True)
        ]

    def reconstruct(self, data: list[dict], rows: list[int], context) -> list[bytes]:
        images = self.module.reconstruct(self.inputs(data, rows)).numpy()
        return [images_png(images[i : i + 1]) for i in range(len(images))]
