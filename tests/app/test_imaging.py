"""MNIST-style preprocessing of uploads and PNG output."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app import imaging
from app.errors import APIError
from tests.conftest import png_bytes


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def mnist_like_digit() -> np.ndarray:
    """A 28x28 white-on-black digit with grey levels: a ring, like a 0."""
    ys, xs = np.indices((28, 28))
    radius = np.hypot(ys - 14, (xs - 14) * 1.4)
    ring = np.clip(1.5 - np.abs(radius - 8), 0, 1)
    noise = np.random.default_rng(0).integers(0, 30, (28, 28))
    return np.clip(ring * 255 + noise * (ring > 0), 0, 255).astype(np.uint8)


def test_28x28_passes_unchanged():
    array = mnist_like_digit()
    x = imaging.preprocess(png_bytes(array), 10**6)
    assert x.shape == (1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], array / 255.0, atol=1e-6)


def test_28x28_dark_digit_on_light_is_inverted():
    array = mnist_like_digit()
    x = imaging.preprocess(png_bytes(255 - array), 10**6)
    np.testing.assert_allclose(x[0], array / 255.0, atol=1e-6)


def test_dark_digit_on_light_photo_is_inverted_fitted_and_centred():
    photo = np.full((480, 640), 230, dtype=np.uint8)  # light paper
    photo[100:400, 300:340] = 10  # a tall dark stroke, off-centre
    x = imaging.preprocess(encode(Image.fromarray(photo), "JPEG"), 10**6)[0]
    assert x.max() > 0.8 and x[0].max() < 0.05  # white digit on black, empty border
    rows, cols = np.nonzero(x > 0.3)
    assert rows.max() - rows.min() + 1 <= 20 + 1  # fitted into the 20x20 box
    ys, xs = np.indices(x.shape)
    assert abs((ys * x).sum() / x.sum() - 13.5) < 1.0  # centre of mass in the middle
    assert abs((xs * x).sum() / x.sum() - 13.5) < 1.0


def test_aspect_ratio_is_kept():
    wide = np.zeros((100, 300), dtype=np.uint8)
    wide[40:60, 30:270] = 255  # a horizontal bar 12:1
    x = imaging.preprocess(png_bytes(wide), 10**6)[0]
    rows, cols = np.nonzero(x > 0.3)
    assert cols.max() - cols.min() > 4 * (rows.max() - rows.min() + 1)


@pytest.mark.parametrize("shape", [(50, 50), (28, 28)])
def test_blank_image_is_no_digit(shape):
    with pytest.raises(APIError) as e:
        imaging.preprocess(png_bytes(np.full(shape, 255)), 10**6)
    assert (e.value.status, e.value.code) == (422, "no_digit")


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "CMYK", "P", "I;16", "LA", "1"])
def test_every_mode_gives_unit_range(mode):
    base = Image.new("L", (40, 30), 0)
    base.paste(255, (15, 5, 22, 25))
    image = (
        base.convert(mode)
        if mode != "I;16"
        else Image.fromarray(np.asarray(base).astype(np.uint16) * 257)
    )
    fmt = "JPEG" if mode == "CMYK" else "TIFF" if mode == "I;16" else "PNG"
    x = imaging.preprocess(encode(image, fmt), 10**6)
    assert x.shape == (1, 28, 28) and x.min() >= 0 and x.max() <= 1 and x.max() > 0.5


def test_exif_orientation_is_applied():
    tall = Image.new("L", (20, 60), 0)
    tall.paste(255, (8, 5, 12, 55))  # vertical stroke
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    x = imaging.preprocess(encode(tall, "JPEG", exif=exif.tobytes()), 10**6)[0]
    rows, cols = np.nonzero(x > 0.3)
    assert cols.max() - cols.min() > rows.max() - rows.min()  # now horizontal


def test_animated_gif_uses_first_frame():
    frames = [Image.fromarray(mnist_like_digit()), Image.new("L", (28, 28), 0)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert imaging.preprocess(buffer.getvalue(), 10**6).max() > 0.5


def test_unsupported_format_is_415():
    with pytest.raises(APIError) as e:
        imaging.preprocess(encode(Image.new("L", (28, 28)), "PPM"), 10**6)
    assert e.value.status == 415


def test_grid_layout_and_png_round_trip():
    images = np.random.default_rng(0).random((5, 1, 28, 28)).astype(np.float32)
    mosaic = imaging.grid(images)
    assert mosaic.shape == (2 * 30 - 2, 3 * 30 - 2)
    np.testing.assert_array_equal(mosaic[30:58, 30:58], images[4, 0])
    assert mosaic[28:30].max() == 0  # gap rows
    decoded = np.asarray(Image.open(io.BytesIO(imaging.to_png(mosaic))))
    np.testing.assert_allclose(decoded / 255.0, mosaic, atol=1 / 255)
    strip = imaging.grid(images, columns=5)
    assert strip.shape == (28, 5 * 30 - 2)


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, each CRC checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        chunks.append((kind, data))
        at += 12 + length
    return chunks


@pytest.mark.parametrize(("shape", "scale"), [((1, 1), 1), ((28, 28), 1), ((58, 88), 3)])
def test_png_is_standard_and_pixel_exact(shape, scale):
    pixels = np.random.default_rng(1).random(shape, dtype=np.float32) * 1.2 - 0.1  # clipped
    png = imaging.to_png(pixels, scale)
    assert [kind for kind, _ in png_chunks(png)] == [b"IHDR", b"IDAT", b"IEND"]
    expected = (np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)
    expected = expected.repeat(scale, axis=0).repeat(scale, axis=1)
    image = Image.open(io.BytesIO(png))
    assert (image.mode, image.size) == ("L", (shape[1] * scale, shape[0] * scale))
    np.testing.assert_array_equal(np.asarray(image), expected)


@pytest.mark.parametrize("shape", [(28, 28), (40, 31), (1, 1)])
def test_grey_png_fast_path_matches_pillow(shape):
    array = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    data = png_bytes(array)
    fast = imaging.grey_png(data, 10**6)
    assert fast is not None and fast.dtype == np.float32
    np.testing.assert_array_equal(fast, imaging.to_grey(imaging.open_image(data, 10**6)))


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (28, 28), "white"),
        Image.new("I;16", (28, 28)),
        Image.new("LA", (28, 28)),
    ],
)
def test_grey_png_fast_path_leaves_other_pngs_to_pillow(image):
    assert imaging.grey_png(encode(image), 10**6) is None


def test_grey_png_fast_path_leaves_transparency_and_oversize_to_pillow():
    grey = Image.new("L", (28, 28), 0)
    assert imaging.grey_png(encode(grey, transparency=0), 10**6) is None
    assert imaging.grey_png(encode(grey), 28 * 28 - 1) is None
    with pytest.raises(APIError) as e:
        imaging.preprocess(encode(grey), 28 * 28 - 1)
    assert e.value.status == 413


def test_truncated_grey_png_is_400_as_before():
    data = png_bytes(mnist_like_digit())
    assert imaging.grey_png(data[:60], 10**6) is None
    with pytest.raises(APIError) as e:
        imaging.preprocess(data[:60], 10**6)
    assert e.value.status == 400 and e.value.code == "invalid_image"
