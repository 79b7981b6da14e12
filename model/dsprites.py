"""dSprites (Matthey et al. 2017), generated here from its factors: no download, no files.

Every combination of five factors, once, in the original's order (the last factor fastest):

    shape        3   square, ellipse, heart
    scale        6   linspace(0.5, 1, 6)
    orientation 40   k * 2 pi / 40, k = 0..39 (the original: linspace(0, 2 pi, 40))
    position x  32   linspace(0, 1, 32)
    position y  32   linspace(0, 1, 32)

3 * 6 * 40 * 32 * 32 = 737,280 binary 64x64 images. Image i is rendered on demand from
its factors (index -> factors -> image): each pixel centre is mapped into the shape's own
frame (translate, rotate by -orientation, divide by scale) and tested against the shape's
implicit function, vectorised over a batch in numpy. The same index always gives the same
image. What differs from DeepMind's file is written in docs/dsprites.md.

    python -m model.dsprites --export data/dsprites_sample --per-shape 100
                                   # an ImageFolder: one folder of PNGs per shape
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

SHAPES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "position_x", "position_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
N_IMAGES = math.prod(FACTOR_SIZES)  # 737,280
SIZE = 64  # images are SIZE x SIZE
IMAGE_SHAPE = (1, SIZE, SIZE)

SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.arange(40) * (2 * np.pi / 40)
POSITIONS = np.linspace(0.0, 1.0, 32)

# Geometry, in units of the image width, at scale 1. Every shape covers the same area,
# AREA = 0.0625 of the image (256 pixels, a 16x16 square; 64 pixels at scale 0.5), about the
# size of the original's sprites. The centre moves over [MARGIN, 1 - MARGIN] so that the
# largest shape stays inside the frame at every orientation (half of its diameter <= 0.2).
AREA = 0.0625
MARGIN = 0.2
HALF_SIDE = math.sqrt(AREA) / 2  # square: |u|, |v| <= 0.125
ELLIPSE_AXES = (math.sqrt(2 * AREA / math.pi), math.sqrt(AREA / (2 * math.pi)))  # 2:1
# Heart: (u^2 + v^2 - 1)^3 - u^2 v^3 <= 0 (v up), area 3.66 in its own units (measured on
# a 3000^2 grid), scaled to AREA. It spans u in [-1.14, 1.14], v in [-1.0, 1.24].
HEART_UNIT_AREA = 3.66
HEART_SCALE = math.sqrt(AREA / HEART_UNIT_AREA)

TEST_FRACTION = 0.05  # held-out factor combinations
SPLIT_SEED = 0


def factors_of(index: np.ndarray) -> np.ndarray:
    """Indices (N,) -> factor classes (N, 5), each column in range(FACTOR_SIZES[j])."""
    index = np.asarray(index, dtype=np.int64)
    if index.size and (index.min() < 0 or index.max() >= N_IMAGES):
        raise IndexError(f"dSprites indices must be in [0, {N_IMAGES})")
    return np.stack(np.unravel_index(index, FACTOR_SIZES), axis=-1)


def index_of(factors: np.ndarray) -> np.ndarray:
    """Factor classes (N, 5) -> indices (N,): the inverse of factors_of."""
    return np.ravel_multi_index(tuple(np.asarray(factors).T), FACTOR_SIZES)


def factor_values(factors: np.ndarray) -> np.ndarray:
    """Factor classes (N, 5) -> values (N, 5): shape class, scale, radians, x and y in [0, 1]."""
    f = np.asarray(factors)
    return np.stack(
        [f[:, 0], SCALES[f[:, 1]], ORIENTATIONS[f[:, 2]], POSITIONS[f[:, 3]], POSITIONS[f[:, 4]]],
        axis=-1,
    ).astype(np.float64)


def render(factors: np.ndarray) -> np.ndarray:
    """Factor classes (N, 5) -> binary images (N, 64, 64) uint8 in {0, 1}.

    Rows go down the image; position y = 0 is the top. Orientation turns the shape
    counter-clockwise as seen on the screen.
    """
    v = factor_values(factors)
    shape, scale, theta = v[:, 0].astype(int), v[:, 1], v[:, 2]
    cx = MARGIN + (1 - 2 * MARGIN) * v[:, 3]
    cy = MARGIN + (1 - 2 * MARGIN) * v[:, 4]
    centres = (np.arange(SIZE) + 0.5) / SIZE
    dx = centres[None, None, :] - cx[:, None, None]  # (N, 1, W)
    dy = cy[:, None, None] - centres[None, :, None]  # (N, H, 1), up is positive
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    s = scale[:, None, None]
    u = (cos * dx + sin * dy) / s  # the pixel in the shape's frame: (N, H, W)
    w = (-sin * dx + cos * dy) / s
    inside = np.empty(u.shape, dtype=bool)
    for k in range(len(SHAPES)):
        rows = shape == k
        if rows.any():
            inside[rows] = _inside(k, u[rows], w[rows])
    return inside.astype(np.uint8)


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if shape == 0:
        return (np.abs(u) <= HALF_SIDE) & (np.abs(v) <= HALF_SIDE)
    if shape == 1:
        a, b = ELLIPSE_AXES
        return (u / a) ** 2 + (v / b) ** 2 <= 1
    hu, hv = u / HEART_SCALE, v / HEART_SCALE - 0.12  # centre the heart's extent vertically
    return (hu**2 + hv**2 - 1) ** 3 - hu**2 * hv**3 <= 0


def images(index: np.ndarray) -> torch.Tensor:
    """Indices (N,) -> float images (N, 1, 64, 64) in {0, 1}, the model's input."""
    return torch.from_numpy(render(factors_of(index))).float().unsqueeze(1)


def split(fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices, sorted: a random `fraction` of the combinations held out."""
    order = np.random.default_rng(seed).permutation(N_IMAGES)
    n_test = round(fraction * N_IMAGES)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def batches(
    index: np.ndarray, batch_size: int, n_images: int, rng: np.random.Generator
) -> Iterator[torch.Tensor]:
    """`n_images` images drawn from `index` in shuffled passes, rendered batch by batch."""
    order = np.empty(0, dtype=np.int64)
    for start in range(0, n_images, batch_size):
        size = min(batch_size, n_images - start)
        while len(order) < size:
            order = np.concatenate([order, rng.permutation(index)])
        take, order = order[:size], order[size:]
        yield images(take)


def export_imagefolder(out: str | Path, per_shape: int = 100, seed: int = 0) -> Path:
    """A sample as an ImageFolder: out/<shape>/<index>.png (0/255 greyscale), random factors."""
    from PIL import Image

    out = Path(out)
    rng = np.random.default_rng(seed)
    block = N_IMAGES // len(SHAPES)  # the shape is the slowest factor
    for k, name in enumerate(SHAPES):
        (out / name).mkdir(parents=True, exist_ok=True)
        index = np.sort(rng.choice(block, per_shape, replace=False)) + k * block
        for i, image in zip(index, render(factors_of(index)), strict=True):
            Image.fromarray(image * 255, mode="L").save(out / name / f"{i:06d}.png")
    return out


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--export", required=True, help="folder to write the ImageFolder sample to")
    p.add_argument("--per-shape", type=int, default=100, help="images per shape (default: 100)")
    p.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    a = p.parse_args(argv)
    out = export_imagefolder(a.export, a.per_shape, a.seed)
    log.info("wrote %d images per shape under %s", a.per_shape, out)


if __name__ == "__main__":
    main()
