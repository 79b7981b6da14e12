"""Images in and out: safe decoding of uploads, MNIST-style preprocessing, PNG encoding.

MNIST digits are white on black, fitted into a 20x20 box and centred by centre of mass
in a 28x28 frame (LeCun et al.). Uploads are brought to that form so the encoder sees
what it was trained on; a 28x28 upload is taken as it is.
"""

import base64
import io
import math
import struct
import warnings
import zlib

import numpy as np
from isal import isal_zlib
from PIL import Image, ImageOps, UnidentifiedImageError

from app import limits
from app.errors import APIError

SIDE = 28  # MNIST frame
BOX = 20  # the digit's bounding box is fitted into BOX x BOX
ALLOWED_FORMATS = {"PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_DEFLATE_LEVEL = 1  # ISA-L levels are 0-3; 1: zlib level 1 size, 3x faster
INK_THRESHOLD = 0.15  # fraction of the image's maximum that counts as ink when cropping


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode an upload, refusing oversized images before their pixels are decompressed."""
    if not data:
        raise APIError(400, "invalid_image", "the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
            if image.format not in ALLOWED_FORMATS:
                raise APIError(
                    415, "unsupported_media_type", f"image format {image.format} is not supported"
                )
            width, height = image.size
            pixels = width * height
            limits.IMAGE_PIXELS.enforce(pixels, max_pixels, f"{width}x{height} = {pixels}")
            image.seek(0)  # first frame of an animation
            image.load()
            return ImageOps.exif_transpose(image)
    except APIError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise APIError(413, "image_too_large", f"refused as a decompression bomb: {e}") from None
    except UnidentifiedImageError:
        raise APIError(
            400, "invalid_image", "the data is not a decodable PNG, JPEG, GIF, BMP, WebP or TIFF"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as e:
        raise APIError(400, "invalid_image", f"the image is corrupt or truncated ({e})") from None


def to_grey(image: Image.Image) -> np.ndarray:
    """Any mode -> float32 (H, W) in [0, 1]; transparency is laid over white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(image, dtype=np.float32)
        top = float(a.max())
        return (a / top).clip(0, 1) if top > 0 else np.zeros_like(a)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    grey = image if image.mode == "L" else image.convert("L")  # L: no copy
    return np.asarray(grey, dtype=np.float32) / 255.0


def border_of(grey: np.ndarray) -> np.ndarray:
    return np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])


def mnist_like(grey: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (28, 28): light background inverted, digit fitted and centred."""
    if grey.shape == (SIDE, SIDE):
        return grey
    if np.median(border_of(grey)) > 0.5:  # dark ink on light paper
        grey = 1.0 - grey
    # Paper is rarely pure black once inverted (shadows, noise, JPEG): take its level, as
    # seen on the border, for zero, so that only the digit counts as ink.
    paper = float(np.median(border_of(grey)))
    top = float(grey.max())
    if top - paper < 0.05:  # no contrast: a blank image
        return np.zeros((SIDE, SIDE), dtype=np.float32)
    grey = np.clip((grey - paper) / (top - paper), 0.0, 1.0)
    ink = grey > INK_THRESHOLD
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    digit = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = BOX / max(digit.shape)
    h, w = (max(1, round(s * scale)) for s in digit.shape)
    resized = Image.fromarray(digit).resize((w, h), Image.Resampling.LANCZOS)
    small = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    return centre_by_mass(small)


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste `digit` (h, w <= 20) into 28x28 so that its centre of mass lands in the middle."""
    h, w = digit.shape
    total = digit.sum()
    ys, xs = np.indices(digit.shape)
    cy = (ys * digit).sum() / total if total > 0 else (h - 1) / 2
    cx = (xs * digit).sum() / total if total > 0 else (w - 1) / 2
    top = int(np.clip(round(SIDE / 2 - 0.5 - cy), 0, SIDE - h))
    left = int(np.clip(round(SIDE / 2 - 0.5 - cx), 0, SIDE - w))
    frame = np.zeros((SIDE, SIDE), dtype=np.float32)
    frame[top : top + h, left : left + w] = digit
    return frame


def preprocess(data: bytes, max_pixels: int) -> np.ndarray:
    """Upload bytes -> (1, 28, 28) float32 in [0, 1], as MNIST."""
    return mnist_like(to_grey(open_image(data, max_pixels)))[None].astype(np.float32)


def grid(images: np.ndarray, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """(N, 1, H, W) -> one (rows*(H+gap)-gap, cols*(W+gap)-gap) mosaic, built in one copy."""
    n, _, h, w = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    padded = np.zeros((rows * columns, h + gap, w + gap), dtype=images.dtype)
    padded[:n, :h, :w] = images[:, 0]
    mosaic = padded.reshape(rows, columns, h + gap, w + gap).transpose(0, 2, 1, 3)
    return mosaic.reshape(rows * (h + gap), columns * (w + gap))[:-gap, :-gap]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def to_png(pixels: np.ndarray, scale: int = 1) -> bytes:
    """(H, W) in [0, 1] -> 8-bit greyscale PNG bytes, optionally upscaled (nearest).

    Written here rather than by Pillow: Pillow tries every PNG row filter on every row,
    which took as long as compressing, and zlib's deflate is 3x slower than ISA-L's at the
    same size (image grids of /sample n=16: 218 us with Pillow, 52 us here; see
    docs/benchmarks.md). Rows are stored unfiltered, deflated at ISA-L level 1.
    """
    grey = (np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)
    if scale > 1:
        grey = grey.repeat(scale, axis=0).repeat(scale, axis=1)
    height, width = grey.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # each row starts with filter 0
    rows[:, 1:] = grey
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"".join(
        (
            PNG_SIGNATURE,
            png_chunk(b"IHDR", header),
            png_chunk(b"IDAT", isal_zlib.compress(rows.tobytes(), PNG_DEFLATE_LEVEL)),
            png_chunk(b"IEND", b""),
        )
    )


def images_png(images: np.ndarray, scale: int = 1, columns: int | None = None) -> bytes:
    """One PNG: the image itself for N=1, else a grid of all N (square unless `columns`)."""
    return to_png(images[0, 0] if len(images) == 1 else grid(images, columns), scale)


def png_base64(images: np.ndarray, scale: int = 1) -> list[str]:
    return [base64.b64encode(to_png(image[0], scale)).decode("ascii") for image in images]
