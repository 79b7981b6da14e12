"""The `resize` preprocessor: any upload made the model's C x H x W input, for every model
whose card does not name the MNIST digit finder (app.digits).

The policy (docs/preprocessing.md): EXIF orientation applied; converted to the model's
channels (grey by ITU-R 601 luma, as Pillow's "L"; RGB as it is), transparency composited
on black (a transparent pixel shows nothing, as the background of a sprite or a digit);
centre-cropped to the model's aspect ratio; resized to H x W with area resampling, all in
8 bits; then scaled to [0, 1].
"""

import cv2
import numpy as np
from PIL import Image

from app.imaging import WIDE_MODES, open_image

TRANSPARENT = ("RGBA", "LA", "PA", "La", "RGBa")


def preprocess(data: bytes, max_pixels: int, shape: tuple[int, int, int]) -> np.ndarray:
    """Upload bytes -> (C, H, W) float32 in [0, 1] for a model of image shape (C, H, W)."""
    channels, height, width = shape
    draft = "L" if channels == 1 else "RGB"
    image = open_image(data, max_pixels, work_side=max(height, width), draft_mode=draft)
    pixels = cropped(eight_bit(image, channels), height / width)
    if pixels.shape[:2] != (height, width):
        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
    pixels = pixels.reshape(height, width, channels).transpose(2, 0, 1)
    return pixels.astype(np.float32) / 255.0


def eight_bit(image: Image.Image, channels: int) -> np.ndarray:
    """Any mode -> uint8 (H, W) for one channel or (H, W, 3), transparency over black."""
    if image.mode in WIDE_MODES:  # 16- or 32-bit grey, scaled by its brightest pixel
        wide = np.asarray(image).astype(np.float32)
        top = float(wide.max())
        grey = (wide * (255.0 / top) + 0.5).astype(np.uint8) if top > 0 else wide.astype(np.uint8)
        return grey if channels == 1 else np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    target = "L" if channels == 1 else "RGB"
    if image.mode in TRANSPARENT:
        with_alpha = np.asarray(image.convert(f"{target}A"))
        alpha = with_alpha[..., -1:].astype(np.uint16)
        over_black = ((with_alpha[..., :-1] * alpha + 127) // 255).astype(np.uint8)
        return over_black[..., 0] if channels == 1 else over_black
    return np.asarray(image if image.mode == target else image.convert(target))


def cropped(pixels: np.ndarray, aspect: float) -> np.ndarray:
    """The centre of `pixels` with height / width = `aspect` (rounded to whole pixels)."""
    height, width = pixels.shape[:2]
    if height > round(width * aspect):
        keep = max(1, round(width * aspect))
        top = (height - keep) // 2
        return pixels[top : top + keep]
    keep = max(1, round(height / aspect))
    left = (width - keep) // 2
    return pixels[:, left : left + keep]
