"""The model file and the request bodies every system is given.

Bodies: one MNIST test digit as a 28x28 PNG, and the same digit as a 640x480 photo-like
JPEG (dark ink scaled up onto a light, noisy, unevenly lit background); plus the batches
and Open Inference Protocol bodies of scripts/bench/v2.py.
"""

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from model.data import load_mnist
from model.export import build_card, export
from model.vae import VAE, VAEConfig
from scripts.bench.v2 import write_v2_bodies

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MODEL = ROOT / "model" / "vae_mnist.pt"
MNIST_DIR = Path(os.environ.get("MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))
UNTRAINED = {  # name -> config of an untrained stand-in, exported like the shipped model
    "tiny": VAEConfig(arch="mlp", latent_dim=4, hidden=[16]),
    "untrained": VAEConfig(),  # the shipped architecture: same cost, meaningless outputs
}


def resolve_model(spec: str, workdir: Path) -> Path:
    """A TorchScript file: `spec` itself, or an untrained 'tiny'/'untrained' one exported now."""
    if spec not in UNTRAINED:
        path = Path(spec)
        if not path.is_file():
            raise SystemExit(f"model file {path} does not exist (or use --model untrained)")
        return path.resolve()
    cfg = UNTRAINED[spec]
    torch.manual_seed(0)
    arch = {"arch": cfg.arch, "latent_dim": cfg.latent_dim, "hidden": cfg.hidden}
    card = build_card(
        {**arch, "channels": cfg.channels, "conv_hidden": cfg.conv_hidden},
        {"config": {"iw_samples": 1, "epochs": 0}},
        {},
        f"0.0.0-{spec}",
    )
    return export(VAE(cfg), card, workdir / f"{spec}.pt").resolve()


def digit_pixels(index: int = 0) -> np.ndarray:
    """One MNIST test digit, (28, 28) uint8, white on black."""
    images, _ = load_mnist("test", MNIST_DIR)
    return images[index]


def photo_of(digit: np.ndarray, seed: int = 0) -> Image.Image:
    """A 640x480 RGB 'photo': the digit as dark ink, about 300 px tall, on lit paper."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:480, 0:640]
    paper = 200 + 30 * (xs / 640) - 20 * (ys / 480) + rng.normal(0, 12, (480, 640))
    ink = np.asarray(Image.fromarray(digit).resize((300, 300), Image.Resampling.BICUBIC)) / 255
    top, left = 90, 200
    region = paper[top : top + 300, left : left + 300]
    paper[top : top + 300, left : left + 300] = region * (1 - ink) + 25 * ink
    grey = np.clip(paper, 0, 255).astype(np.uint8)
    tint = np.stack([grey, grey * 0.97, grey * 0.9], axis=-1).astype(np.uint8)
    return Image.fromarray(tint, mode="RGB")


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def write_bodies(workdir: Path, latent_dim: int) -> dict[str, Path]:
    """The request bodies as files (the load generator reads them): key -> path."""
    digit = digit_pixels()
    bodies = {
        "digit_png": encoded(Image.fromarray(digit, mode="L"), "PNG"),
        "photo_jpg": encoded(photo_of(digit), "JPEG"),
    }
    paths = {}
    for key, data in bodies.items():
        paths[key] = workdir / f"{key}.{key.rsplit('_', 1)[1]}"
        paths[key].write_bytes(data)
    digits = load_mnist("test", MNIST_DIR)[0][:64]
    pngs = [encoded(Image.fromarray(d, mode="L"), "PNG") for d in digits]
    return {**paths, **write_v2_bodies(workdir, digits, pngs, latent_dim)}
