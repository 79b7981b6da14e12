"""What the client returns: numpy arrays for numbers, PIL images for pictures."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from vae_client.images import array_to_pil, from_base64, grid


@dataclass(frozen=True)
class Encoding:
    """q(z|x) of one image: mean and standard deviation (D,), and KL to the prior in nats."""

    mu: np.ndarray
    sigma: np.ndarray
    kl: float | None = None

    @property
    def latent_dim(self) -> int:
        return len(self.mu)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "Encoding":
        return cls(
            mu=np.asarray(body["mu"], dtype=np.float32),
            sigma=np.asarray(body["sigma"], dtype=np.float32),
            kl=body.get("kl"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "mu": self.mu.tolist(),
            "sigma": self.sigma.tolist(),
            "latent_dim": self.latent_dim,
            "kl": self.kl,
        }


@dataclass(frozen=True)
class Score:
    """POST /score of one image, in nats: ELBO and its parts, the importance-weighted
    log-likelihood with k samples, bits per pixel, its percentile among the model's
    held-out images, the out-of-distribution score and its percentile, and whether the
    image is typical (OOD score at or above the model's 1st-percentile threshold)."""

    elbo: float
    reconstruction: float
    kl: float
    log_likelihood: float
    bits_per_dim: float
    percentile: float
    ood_score: float
    ood_percentile: float
    typical: bool
    k: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "Score":
        return cls(**{name: body[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Classification:
    """POST /classify of one image: the digit, its 10 probabilities, and mu of q(z|x)."""

    digit: int
    probabilities: np.ndarray
    mu: np.ndarray

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "Classification":
        return cls(
            digit=body["digit"],
            probabilities=np.asarray(body["probabilities"], dtype=np.float32),
            mu=np.asarray(body["mu"], dtype=np.float32),
        )


@dataclass(frozen=True)
class Images:
    """N images from the service: pixels (N, 28, 28) in [0, 1] and the same as PIL images.

    `z` holds the latent vectors decoded (sample, interpolate), `seed` the seed of a sample,
    `inputs` the preprocessed 28x28 inputs the encoder saw and `mu`, `sigma` their q(z|x)
    (reconstruct).
    """

    pixels: np.ndarray
    images: list[Image.Image] = field(repr=False)
    z: np.ndarray | None = None
    seed: int | None = None
    inputs: np.ndarray | None = None
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.pixels)

    def grid(self, columns: int | None = None, scale: int = 1) -> Image.Image:
        """All images in one picture (square grid unless `columns`), upscaled `scale` times."""
        image = array_to_pil(grid(self.pixels, columns))
        if scale > 1:
            size = (image.width * scale, image.height * scale)
            image = image.resize(size, Image.Resampling.NEAREST)
        return image

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "Images":
        def optional(key: str) -> np.ndarray | None:
            return None if body.get(key) is None else np.asarray(body[key], dtype=np.float32)

        return cls(
            pixels=np.asarray(body["pixels"], dtype=np.float32),
            images=[from_base64(png) for png in body["images"]],
            z=optional("z"),
            seed=body.get("seed"),
            inputs=optional("inputs"),
            mu=optional("mu"),
            sigma=optional("sigma"),
        )


@dataclass(frozen=True)
class ModelInfo:
    """GET /model: what is served and how, with the model card embedded in the model file."""

    version: str
    latent_dim: int
    device: str
    precision: str
    batching: bool
    card: dict[str, Any]
    capabilities: list[str] = field(default_factory=list)  # score, classify, ...

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "ModelInfo":
        return cls(
            version=body["version"],
            latent_dim=body["latent_dim"],
            device=body["device"],
            precision=body.get("precision", "float32"),  # servers before it had only float32
            batching=body["batching"],
            card=body["card"],
            capabilities=body.get("capabilities", []),  # servers before it had none
        )
