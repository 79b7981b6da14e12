"""Images in (paths, bytes, PIL images, numpy arrays -> upload parts) and out (base64 -> PIL)."""

import base64
import io
import math
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

ImageInput = str | os.PathLike[str] | bytes | Image.Image | np.ndarray
"""A path to an image file, encoded image bytes, a PIL image, or pixels (H, W) or (H, W, C):
floats in [0, 1] or uint8, white digit on black as MNIST (light backgrounds are inverted
by the service)."""


def to_bytes(image: ImageInput) -> bytes:
    """The encoded bytes to upload for one image (PIL images and arrays become PNG)."""
    if isinstance(image, bytes):
        return image
    if isinstance(image, str | os.PathLike):
        with open(image, "rb") as f:
            return f.read()
    if isinstance(image, np.ndarray):
        image = array_to_pil(image)
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    raise TypeError(f"not an image: {type(image).__name__} (path, bytes, PIL image or array)")


def array_to_pil(pixels: np.ndarray) -> Image.Image:
    """(H, W) or (H, W, C) floats in [0, 1] (or uint8) -> a PIL image."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        raise ValueError(f"pixels must be (H, W) or (H, W, 1|3|4), not {pixels.shape}")
    if pixels.dtype != np.uint8:
        pixels = (np.clip(pixels.astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(pixels)


def upload_parts(images: Sequence[ImageInput]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Multipart parts, one field `file` per image, in order."""
    return [
        ("file", (f"image{i}", to_bytes(image), "application/octet-stream"))
        for i, image in enumerate(images)
    ]


def from_base64(png: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(png)))
    image.load()
    return image


def grid(pixels: np.ndarray, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """(N, H, W) -> one mosaic with `gap` black pixels between images (square by default)."""
    n, h, w = pixels.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    mosaic = np.zeros((rows * (h + gap) - gap, columns * (w + gap) - gap), dtype=pixels.dtype)
    for i, image in enumerate(pixels):
        top, left = (i // columns) * (h + gap), (i % columns) * (w + gap)
        mosaic[top : top + h, left : left + w] = image
    return mosaic
