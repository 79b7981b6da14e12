"""The naive baseline: FastAPI with the model called inline in the handlers.

No batching, no executor, no admission control: every model call and every image
decode runs on the event loop. Same TorchScript file and the same app.imaging functions
as vae-serve, so the responses are the same; raw image bodies only.

    VAE_MODEL_PATH=model/vae_mnist.pt uvicorn scripts.bench.naive_app:app --port 8001
"""

import os

import torch
from fastapi import FastAPI, Request, Response

from app.imaging import images_png, preprocess
from model import artifact

MAX_PIXELS = 16_000_000
torch.set_num_threads(1)
module = artifact.load(os.environ["VAE_MODEL_PATH"])[0]
latent_dim = int(module.latent_dim)
app = FastAPI(title="naive VAE baseline")


async def image_input(request: Request) -> torch.Tensor:
    return torch.from_numpy(preprocess(await request.body(), MAX_PIXELS)[None])


@app.get("/readyz")
async def readyz() -> dict:
    return {"status": "ready"}


@app.get("/sample")
async def sample(n: int = 16) -> Response:
    with torch.inference_mode():
        images = module.decode(torch.randn(n, latent_dim))
    return Response(images_png(images.numpy()), media_type="image/png")


@app.post("/encode")
async def encode(request: Request) -> dict:
    x = await image_input(request)
    with torch.inference_mode():
        mu, sigma = module.encode(x)
        kl = module.kl_divergence(mu, sigma)
    return {
        "mu": mu[0].tolist(),
        "sigma": sigma[0].tolist(),
        "latent_dim": latent_dim,
        "kl": kl.item(),
    }


@app.post("/reconstruct")
async def reconstruct(request: Request) -> Response:
    x = await image_input(request)
    with torch.inference_mode():
        images = module.reconstruct(x)
    return Response(images_png(images.numpy()), media_type="image/png")
