"""Images in and out: safe decoding of uploads, PNG encoding.

Uploads are decoded here and handed to app.digits, which finds the digit and makes it
MNIST-like, so the encoder sees what it was trained on.
"""

import base64
import io
import math
import struct
import warnings
import zlib

import cv2
import numpy as np
from isal import isal_zlib
from PIL import Image, ImageOps, UnidentifiedImageError

from app import digits, limits
from app.errors import APIError

ALLOWED_FORMATS = {"PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I", "F")  # greyscale over 8 bits
UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, struct.error)  # what decoders raise
PNG_DEFLATE_LEVEL = 1  # ISA-L levels are 0-3; 1: zlib level 1 size, 3x faster


def open_image(
    data: bytes, max_pixels: int, work_side: int = digits.WORK_SIDE, draft_mode: str = "L"
) -> Image.Image:
    """Decode an upload, refusing oversized images before their pixels are decompressed. A
    JPEG is decoded reduced (DCT scaling), in `draft_mode`, no smaller than `work_side`."""
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
            shrink = work_side / max(width, height)
            if image.format == "JPEG" and shrink < 1:
                # A photo is decoded straight to a reduced greyscale (DCT scaling by 1/2 to
                # 1/8), no smaller than what app.digits analyses: a 640x480 JPEG decodes at
                # 320x240 in ~1/3 of the time, a 4032x3024 one at 504x378.
                size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
                image.draft(draft_mode, size)
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
    except UNREADABLE as e:
        raise APIError(400, "invalid_image", f"the image is corrupt or truncated ({e})") from None


def to_grey(image: Image.Image) -> np.ndarray:
    """Any mode -> float32 (H, W) in [0, 1], transparency laid over white, shrunk to at most
    what app.digits analyses (digits.shrink).

    Shrunk while still 8 or 16 bits, before any float conversion: a 4000x4000 upload (a
    15 KB 1-bit PNG can hold one) was made 64 MB of float32 (~190 ms on this busy 2-core
    machine) only to be averaged down to 160x160; averaging its uint8 pixels took ~5 ms.
    """
    if image.mode in WIDE_MODES:
        return wide_grey(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        return over_white(np.asarray(image if image.mode == "LA" else image.convert("LA")))
    grey = image if image.mode == "L" else image.convert("L")  # L: no copy
    return digits.shrink(np.asarray(grey)).astype(np.float32) / 255.0


def wide_grey(image: Image.Image) -> np.ndarray:
    """16- or 32-bit greyscale -> float32 (H, W) in [0, 1], scaled by its brightest pixel."""
    a = np.asarray(image)
    a = a.astype(np.uint16 if a.dtype.kind == "u" else np.float32, copy=False)  # for OpenCV
    top = float(a.max())
    small = digits.shrink(a).astype(np.float32)
    return (small / top).clip(0, 1) if top > 0 else np.zeros_like(small)


def over_white(la: np.ndarray) -> np.ndarray:
    """(H, W, 2) uint8 luminance and alpha -> float32 (H, W) in [0, 1] as seen over white.

    Over white a pixel is 1 - alpha x (1 - luminance): its darkness alpha x (255 - L) fits
    uint16 and is averaged down in it. Pillow's alpha_composite of a 4000x4000 image held
    the GIL for 185 ms here (the longest wait of another thread): the event loop's too.
    """
    darkness = (255 - la[..., 0]).astype(np.uint16) * la[..., 1]
    return 1.0 - digits.shrink(darkness).astype(np.float32) / (255.0 * 255.0)


def png_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, bit depth, colour type) from a PNG's IHDR; None if it is no PNG."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">IIBB", data[16:26])


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of an upload's first frame, read from its header alone; None when no
    decoder reads the header. A PNG's IHDR is read by hand (~1 us; Pillow's lazy open takes
    ~14 us, a fifth of a 28x28 upload's preprocessing), other formats by Pillow's open."""
    header = png_header(data)
    if header is not None:
        return header[:2]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data)).size  # reads the header only
    except (Image.DecompressionBombError, *UNREADABLE):
        return None


DECODE_COPIES = 2  # the decoded image and one converted copy (to_grey, resizing.eight_bit)


def decoded_bytes(data: bytes, max_pixels: int) -> int:
    """Bytes of the pixel buffers that decoding `data` takes, from its header alone: width x
    height x Pillow's bytes per pixel for its mode (1 for 1/L/P, 2 for 16-bit grey, else 4:
    Pillow stores RGB in 4), DECODE_COPIES times. 0 for an image refused before decoding
    (no readable header, over `max_pixels`). A JPEG decoded reduced (open_image) takes less."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
    except (Image.DecompressionBombError, *UNREADABLE):
        return 0
    pixels = image.width * image.height
    if pixels > max_pixels:
        return 0
    per_pixel = 1 if image.mode in ("1", "L", "P") else 2 if image.mode.startswith("I;16") else 4
    return pixels * per_pixel * DECODE_COPIES


def grey_png(data: bytes, max_pixels: int) -> np.ndarray | None:
    """An 8-bit greyscale PNG (how MNIST digits are usually saved), decoded by OpenCV, as
    to_grey gives it (float32 in [0, 1], shrunk); None for anything else, which open_image
    decodes with all its checks (also a corrupt PNG, so that its error is the same).

    Hand-written for speed: a 28x28 PNG decodes in ~15 us here against ~100 us for Pillow's
    open, load, EXIF transpose and conversion (measured, docs/benchmarks.md). Only images
    without transparency or EXIF chunks take this path, so the result is Pillow's exactly.
    """
    header = png_header(data)
    if header is None:
        return None
    width, height, depth, colour = header
    if depth != 8 or colour != 0 or not 0 < width * height <= max_pixels:
        return None
    if b"tRNS" in data or b"eXIf" in data:
        return None
    grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if grey is None or grey.shape != (height, width):
        return None
    return digits.shrink(grey).astype(np.float32) / 255.0


def preprocess(data: bytes, max_pixels: int) -> np.ndarray:
    """Upload bytes -> (1, 28, 28) float32 in [0, 1], as MNIST (app.digits finds the digit)."""
    grey = grey_png(data, max_pixels)
    if grey is None:
        grey = to_grey(open_image(data, max_pixels))
    return digits.mnist_like(grey)[None].astype(np.float32)


def channels_last(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) model images -> (N, H, W) for grey, (N, H, W, 3) for RGB: the layout of
    PNG rows and of the JSON pixel arrays."""
    if images.shape[1] == 1:
        return images[:, 0]
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1))  # orjson writes C order only


def grid(images: np.ndarray, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """(N, C, H, W) -> one mosaic of (rows*(H+gap)-gap, cols*(W+gap)-gap) pixels, each a
    grey value or (for RGB) 3, built in one copy."""
    n, _, h, w = images.shape
    pixels = channels_last(images)
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    padded = np.zeros((rows * columns, h + gap, w + gap, *pixels.shape[3:]), dtype=images.dtype)
    padded[:n, :h, :w] = pixels
    mosaic = padded.reshape(rows, columns, h + gap, w + gap, -1).transpose(0, 2, 1, 3, 4)
    mosaic = mosaic.reshape(rows * (h + gap), columns * (w + gap), *pixels.shape[3:])
    return mosaic[:-gap, :-gap]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def to_png(pixels: np.ndarray, scale: int = 1) -> bytes:
    """(H, W) or (H, W, 3) in [0, 1] -> 8-bit greyscale or RGB PNG bytes, optionally
    upscaled (nearest).

    Written here rather than by Pillow: Pillow tries every PNG row filter on every row,
    which took as long as compressing, and zlib's deflate is 3x slower than ISA-L's at the
    same size (image grids of /sample n=16: 218 us with Pillow, 52 us here; see
    docs/benchmarks.md). Rows are stored unfiltered, deflated at ISA-L level 1.
    """
    values = (np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)
    if scale > 1:
        values = values.repeat(scale, axis=0).repeat(scale, axis=1)
    height, width = values.shape[:2]
    row_bytes = values[0].size
    rows = np.zeros((height, row_bytes + 1), dtype=np.uint8)  # each row starts with filter 0
    rows[:, 1:] = values.reshape(height, row_bytes)
    colour_type = 0 if values.ndim == 2 else 2  # 8-bit greyscale, or 8-bit RGB
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"".join(
        (
            PNG_SIGNATURE,
            png_chunk(b"IHDR", header),
            png_chunk(b"IDAT", isal_zlib.compress(rows.tobytes(), PNG_DEFLATE_LEVEL)),
            png_chunk(b"IEND", b""),
        )
    )


def images_png(images: np.ndarray, scale: int = 1, columns: int | None = None) -> bytes:
    """(N, C, H, W) -> one PNG: the image itself for N=1, else a grid of all N (square
    unless `columns`)."""
    return to_png(channels_last(images)[0] if len(images) == 1 else grid(images, columns), scale)


def png_base64(images: np.ndarray, scale: int = 1) -> list[str]:
    """(N, C, H, W) -> one base64 PNG per image."""
    return [
        base64.b64encode(to_png(image, scale)).decode("ascii") for image in channels_last(images)
    ]
