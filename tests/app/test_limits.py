"""Every request limit (app/limits.py): 413 with a code naming it, before the work it bounds."""

import pytest

from app import limits
from app.settings import Settings
from tests.conftest import png_bytes

LATENT = 4
Z = [0.0] * LATENT


def assert_limit(r, limit: limits.Limit) -> str:
    assert r.status_code == limit.status == 413, r.text
    body = r.json()
    assert body["error"] == limit.code
    assert f"VAE_{limit.setting.upper()}" in body["detail"]
    return body["detail"]


def test_every_limit_is_a_setting_with_a_413():
    for limit in limits.LIMITS:
        assert limit.setting in Settings.model_fields
        assert limit.status == 413


def test_the_vector_limit_is_one_answer_on_decode_and_sample(make_client):
    client = make_client(max_samples=4)
    assert_limit(client.post("/decode", json={"z": [Z] * 5}), limits.VECTORS)
    assert_limit(client.get("/sample?n=5"), limits.VECTORS)
    assert client.get("/sample?n=4").status_code == 200


def test_a_huge_n_is_the_same_413_not_a_validation_error(client):
    assert_limit(client.get("/sample?n=99999999999999999999999"), limits.VECTORS)


def test_interpolation_steps_are_checked_before_the_uploads_are_read(make_client):
    client = make_client(max_interpolation_steps=5)
    not_images = [("file", ("a.png", b"junk", "image/png")), ("file", ("b.png", b"x", "image/png"))]
    assert_limit(client.post("/interpolate?steps=6", files=not_images), limits.STEPS)
    assert_limit(client.post("/interpolate?steps=6", json={"z_start": Z, "z_end": Z}), limits.STEPS)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", "/sample?n=256&scale=16", {}),
        ("post", "/decode?scale=16", {"json": {"z": [Z] * 64}}),
        ("post", "/interpolate?steps=64&scale=16", {"json": {"z_start": Z, "z_end": Z}}),
    ],
)
def test_output_size_is_bounded_before_the_model_runs(client, method, path, kwargs):
    detail = assert_limit(getattr(client, method)(path, **kwargs), limits.OUTPUT_PIXELS)
    assert "4194304" in detail


def test_reconstruct_output_is_bounded_before_the_uploads_are_decoded(make_client):
    client = make_client(max_output_pixels=784 * 4)
    files = [("file", (f"{i}.png", b"not decoded", "image/png")) for i in range(2)]
    assert_limit(client.post("/reconstruct?scale=2", files=files), limits.OUTPUT_PIXELS)


def test_images_over_the_limit_are_one_answer_however_many(make_client, digit_png):
    client = make_client(max_batch_items=3)
    for count in (4, 50):
        files = [("file", (f"{i}.png", digit_png, "image/png")) for i in range(count)]
        assert_limit(client.post("/encode", files=files), limits.IMAGES)


def test_image_pixels(make_client):
    import numpy as np

    client = make_client(max_image_pixels=1000)
    files = {"file": ("big.png", png_bytes(np.zeros((40, 40))), "image/png")}
    assert "40x40 = 1600" in assert_limit(client.post("/encode", files=files), limits.IMAGE_PIXELS)
    digit = {"file": ("digit.png", png_bytes(np.eye(28) * 255), "image/png")}
    assert client.post("/encode", files=digit).status_code == 200  # 784 pixels: under it


def test_body_bytes(make_client):
    client = make_client(max_upload_bytes=2048, max_json_bytes=1024)
    raw = client.post("/encode", content=b"\0" * 5000, headers={"content-type": "image/png"})
    assert "5000 bytes" in assert_limit(raw, limits.BODY_BYTES)
    json = client.post("/decode", content=b" " * 1500, headers={"content-type": "application/json"})
    assert "VAE_MAX_JSON_BYTES" in assert_limit(json, limits.JSON_BYTES)
