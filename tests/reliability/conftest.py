"""Fixtures and helpers for the reliability suite: in-process apps, images, real servers."""

import asyncio
import io
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import numpy as np
from fastapi import FastAPI
from PIL import Image

LATENT = 4  # the tiny model's D
ROOT = Path(__file__).resolve().parents[2]


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def assert_encoding(body: dict) -> None:
    """One valid q(z|x): D finite means, D finite positive deviations."""
    assert body["latent_dim"] == LATENT
    mu, sigma = np.array(body["mu"]), np.array(body["sigma"])
    assert mu.shape == sigma.shape == (LATENT,)
    assert np.isfinite(mu).all() and np.isfinite(sigma).all() and (sigma > 0).all()


@asynccontextmanager
async def running(app: FastAPI):
    """The app with its lifespan started, behind an async client on the current event loop."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def run_async(coroutine):
    return asyncio.run(coroutine)


def start_server(env: dict[str, str], module: str = "app.cli") -> subprocess.Popen:
    """`vae-serve` (python -m app.cli, the console script's code) with VAE_* overrides."""
    return subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1", "VAE_LOG_FORMAT": "text", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
