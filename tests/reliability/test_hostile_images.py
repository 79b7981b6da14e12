"""A hostile image corpus, generated here: every upload gets its documented 4xx, or a correct
200 when the image is valid but unusual, within a time bound derived from plain encodes
measured in the same test, and the service keeps serving. The service's one shared app
(tests/conftest.py) takes them all in turn. Configured limits: tests/app/test_limits.py.
"""

import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app import imaging
from tests.helpers import assert_error, time_bound, timed
from tests.reliability.conftest import assert_encoding, encoded

# A hostile upload may cost this many encodes of a plain digit (measured in each test); a
# decoded bomb (10^10 pixels) costs millions.
BASELINE_FACTOR = 50
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header (correct CRCs) claiming width x height, with a tiny IDAT."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return (
        PNG_MAGIC + header + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")
    )


def stroke(width: int, height: int, mode: str = "L") -> Image.Image:
    """A light stroke on a dark background, in the given mode."""
    array = np.zeros((height, width), dtype=np.uint8)
    array[
        height // 4 : max(height // 4 + 1, 3 * height // 4),
        width // 3 : width // 3 + 1 + width // 6,
    ] = 255
    return Image.fromarray(array).convert(mode)


def huge_palette_png() -> bytes:
    """A palette image whose PLTE chunk holds 1000 entries (PNG allows at most 256)."""
    data = encoded(stroke(28, 28, "P"))
    start = data.index(b"PLTE") - 4
    end = start + 12 + struct.unpack(">I", data[start : start + 4])[0]
    return data[:start] + png_chunk(b"PLTE", bytes(range(256)) * 11 + b"\0" * 184) + data[end:]


def animated_gif() -> bytes:
    frames = [stroke(40, 40, "P"), Image.new("P", (40, 40), 7)]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)


def bar(width: int, height: int) -> Image.Image:
    """A light horizontal bar across a dark RGB image (a stroke, not a blob)."""
    array = np.zeros((height, width), dtype=np.uint8)
    array[height // 2 - 2 : height // 2 + 2, width // 8 : width - width // 8] = 255
    return Image.fromarray(array).convert("RGB")


def stroke_on_transparent() -> Image.Image:
    """A black stroke on a fully transparent RGBA background: the alpha decides the ink."""
    image = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    image.paste((0, 0, 0, 255), (25, 5, 32, 35))
    return image


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return encoded(bar(60, 20), "JPEG", exif=exif.tobytes(), quality=95)


VALID = {
    "16-bit greyscale": encoded(
        Image.fromarray(np.asarray(stroke(30, 30)).astype(np.uint16) * 257)
    ),
    "RGBA": encoded(stroke(32, 32, "RGBA")),
    "RGBA, black on transparent": encoded(stroke_on_transparent()),
    "LA": encoded(stroke(32, 32, "LA")),
    "palette": encoded(stroke(32, 32, "P")),
    "1-bit": encoded(stroke(32, 32, "1")),
    "CMYK JPEG": encoded(stroke(32, 32, "CMYK"), "JPEG"),
    "EXIF-rotated JPEG": exif_rotated_jpeg(),
    "animated GIF": animated_gif(),
    "BMP": encoded(stroke(28, 28, "RGB"), "BMP"),
    "WebP": encoded(stroke(28, 28, "RGB"), "WEBP"),
    "TIFF float": encoded(Image.fromarray(np.asarray(stroke(30, 30), dtype=np.float32)), "TIFF"),
}

# Valid images that hold no digit: 422 no_digit (docs/preprocessing.md), not a ghost encoding.
NO_DIGIT = {
    "1x1": encoded(Image.new("L", (1, 1), 255)),
    "1x5000": encoded(stroke(1, 5000)),
    "5000x1": encoded(stroke(5000, 1)),
    "all white": encoded(Image.new("L", (50, 50), 255)),
    "all black": encoded(Image.new("L", (50, 50), 0)),
    "a single dot": encoded(Image.fromarray(np.pad(np.full((6, 6), 255, np.uint8), 40))),
}

digit = encoded(stroke(28, 28))
INVALID = {
    "zero bytes": (b"", 400, "invalid_image"),
    "truncated PNG": (digit[: len(digit) // 2], 400, "invalid_image"),
    "truncated JPEG": (VALID["CMYK JPEG"][:200], 400, "invalid_image"),
    "wrong magic": (b"\x89PNX" + digit[4:], 400, "invalid_image"),
    "random bytes": (bytes(range(256)) * 8, 400, "invalid_image"),
    "bomb 100000x100000 PNG": (png_claiming(100_000, 100_000), 413, "image_too_large"),
    "bomb 2^31-1 wide PNG": (png_claiming(2**31 - 1, 1), 413, "image_too_large"),
    "SVG": (b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="9"/></svg>', 400, "invalid_image"),
    "HTML": (b"<!doctype html><script>alert(1)</script>", 400, "invalid_image"),
    "PPM (not an accepted format)": (
        b"P5\n2 2\n255\n\x00\xff\xff\x00",
        415,
        "unsupported_media_type",
    ),
}


def post_image(client: TestClient, data: bytes, content_type: str = "image/png"):
    headers = {"content-type": content_type}
    return timed(lambda: client.post("/encode", content=data, headers=headers))


def bound_s(client: TestClient) -> float:
    """The time limit for one upload: from the slowest of three plain encodes, now."""
    return time_bound(max(post_image(client, digit)[1] for _ in range(3)), BASELINE_FACTOR)


def still_serving(client: TestClient) -> None:
    response, _ = post_image(client, digit)
    assert response.status_code == 200
    assert_encoding(response.json())


@pytest.mark.parametrize("name", VALID)
def test_valid_unusual_images_encode_to_finite_gaussians(client, name):
    bound = bound_s(client)
    response, seconds = post_image(client, VALID[name])
    assert response.status_code == 200, response.text
    assert_encoding(response.json())
    assert seconds < bound
    still_serving(client)


@pytest.mark.parametrize("name", NO_DIGIT)
def test_images_without_a_digit_get_no_digit_quickly(client, name):
    bound = bound_s(client)
    response, seconds = post_image(client, NO_DIGIT[name])
    assert_error(response, 422, "no_digit")
    assert seconds < bound
    still_serving(client)


@pytest.mark.parametrize("name", INVALID)
def test_hostile_uploads_get_the_documented_error_quickly(client, name):
    data, status, code = INVALID[name]
    bound = bound_s(client)
    response, seconds = post_image(client, data)
    assert_error(response, status, code)
    assert seconds < bound
    still_serving(client)


MULTIPART = ["zero bytes", "random bytes", "bomb 100000x100000 PNG", "truncated PNG", "SVG"]


@pytest.mark.parametrize("name", MULTIPART)
def test_hostile_uploads_in_multipart_are_refused_alike(client, name):
    data, status, code = INVALID[name]
    response = client.post("/encode", files={"file": ("x.png", data, "image/png")})
    assert_error(response, status, code)


def test_huge_palette_is_refused_or_read_safely(client):
    bound = bound_s(client)
    response, seconds = post_image(client, huge_palette_png())
    if response.status_code == 200:
        assert_encoding(response.json())
    else:
        assert_error(response, 400, "invalid_image")
    assert seconds < bound
    still_serving(client)


def test_exif_orientation_is_applied():
    upright = imaging.preprocess(encoded(bar(60, 20).rotate(-90, expand=True), "PNG"), 10**6)
    rotated = imaging.preprocess(exif_rotated_jpeg(), 10**6)
    sideways = imaging.preprocess(encoded(bar(60, 20), "PNG"), 10**6)
    assert np.abs(rotated - upright).mean() < np.abs(rotated - sideways).mean() / 4


@pytest.mark.parametrize(
    "content_type", ["image/svg+xml", "text/html", "application/octet-stream", "application/json"]
)
def test_other_media_types_are_refused(client, content_type):
    response, _ = post_image(client, VALID["RGBA"], content_type)
    assert_error(response, 415, "unsupported_media_type")


def test_multipart_without_a_file_is_refused(client):
    response = client.post("/encode", data={"note": "no image here"}, files={"other": ("a", b"x")})
    assert_error(response, 422, "no_image")
    response = client.post("/encode", files={"file": (None, b"text, not a file")})
    assert_error(response, 422, "no_image")


def test_interpolating_one_image_is_refused(client):
    response = client.post("/interpolate", files={"file": ("a.png", digit, "image/png")})
    assert_error(response, 422, "invalid_parameters")


def test_broken_multipart_is_refused(client):
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    response = client.post("/encode", content=b"--xyz\r\ngarbage", headers=headers)
    assert response.status_code in (400, 422)
    assert_error(response, response.status_code)


def test_a_50_mb_body_is_refused_before_it_is_read(client):
    body = b"\0" * (50 * 2**20)
    bound = bound_s(client)
    response, seconds = post_image(client, body)
    assert_error(response, 413, "payload_too_large")
    assert seconds < bound

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(50):
            yield b"\0" * 2**20

    headers = {"content-type": "image/png"}
    response, seconds = timed(lambda: client.post("/encode", content=chunks(), headers=headers))
    assert_error(response, 413, "payload_too_large")
    assert seconds < bound
    still_serving(client)
