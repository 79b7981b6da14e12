"""Error statuses of the image routes, the API key, overload and the 500 path, as JSON
{"error", "detail"}, and the service keeps serving. Limits: test_limits.py; bad parameters
and bodies, hostile images: tests/reliability/."""

import io
import struct
import zlib

import numpy as np
from PIL import Image

from tests.conftest import png_bytes
from tests.helpers import assert_error

LATENT = 4


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming width x height pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def upload(client, data: bytes, content_type: str = "image/png"):
    return client.post("/encode", files={"file": ("x", data, content_type)})


def test_undecodable_image_is_400(client):
    assert_error(upload(client, b"this is not an image"), 400, "invalid_image")


def test_truncated_png_is_400(client, digit_png):
    big = png_bytes(np.random.default_rng(0).integers(0, 255, (200, 200)))
    assert_error(upload(client, big[: len(big) // 2]), 400, "invalid_image")


def test_empty_upload_is_400(client):
    assert_error(upload(client, b""), 400, "invalid_image")


def test_unsupported_media_type_is_415(client):
    r = client.post("/encode", content=b"{}", headers={"content-type": "application/json"})
    assert_error(r, 415, "unsupported_media_type")


def test_svg_with_image_content_type_is_rejected(client):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    r = client.post("/encode", content=svg, headers={"content-type": "image/png"})
    assert_error(r, 400, "invalid_image")


def test_multipart_without_file_is_422(client):
    r = client.post("/encode", files={"note": (None, "no file here")})
    assert_error(r, 422, "no_image")


def test_interpolate_needs_two_images(client, digit_png):
    r = client.post("/interpolate", files={"file": ("a.png", digit_png, "image/png")})
    assert_error(r, 422, "invalid_parameters")


def test_api_key_required_on_api_routes_only(make_client, digit_png):
    client = make_client(api_key="s3cret")
    assert_error(client.get("/sample?n=1"), 401, "unauthorized")
    assert_error(client.get("/model", headers={"x-api-key": "wrong"}), 401)
    assert client.get("/sample?n=1", headers={"x-api-key": "s3cret"}).status_code == 200
    assert client.get("/model", headers={"authorization": "Bearer s3cret"}).status_code == 200
    for open_route in ("/healthz", "/readyz", "/metrics"):
        assert client.get(open_route).status_code == 200


def test_no_api_key_configured_means_open(client):
    assert client.get("/model").status_code == 200


def test_overload_gives_503_with_retry_after(make_client):
    client = make_client(queue_capacity=1)
    model = client.app.state.model
    model.outstanding = 1  # as if one call were already running
    r = client.get("/sample?n=1")
    assert_error(r, 503, "overloaded")
    assert r.headers["retry-after"] == "1"
    model.outstanding = 0
    assert client.get("/sample?n=1").status_code == 200


def test_failing_model_call_is_json_500_and_the_next_succeeds(client, monkeypatch):
    model = client.app.state.model
    real_forward = model.forward
    calls = {"n": 0}

    def flaky(method, x):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("/secret/path/model.py exploded")
        return real_forward(method, x)

    monkeypatch.setattr(model, "forward", flaky)
    r = client.get("/sample?n=2")
    body = assert_error(r, 500, "internal_error")
    assert "/secret" not in body["detail"]
    assert client.get("/sample?n=2").status_code == 200
    metrics = client.get("/metrics").text
    assert 'vae_failures_total{reason="internal_error"}' in metrics


def test_exif_rotated_and_rgba_images_are_accepted(client):
    rgba = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (25, 5, 32, 35))  # black stroke on transparent
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    r = upload(client, buffer.getvalue())
    assert r.status_code == 200 and all(s > 0 for s in r.json()["sigma"])
