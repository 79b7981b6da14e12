"""Every endpoint's happy path on the tiny model: statuses, shapes, ranges, reproducibility."""

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from model import artifact
from tests.conftest import png_bytes

LATENT = 4  # the tiny model's D
PNG = {"content-type": "image/png"}


def decode_png(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


def test_encode_multipart_returns_mu_sigma_kl(client, digit_png):
    r = client.post("/encode", files={"file": ("d.png", digit_png, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["latent_dim"] == LATENT
    assert len(body["mu"]) == len(body["sigma"]) == LATENT
    assert all(s > 0 for s in body["sigma"]) and body["kl"] >= 0


def test_encode_raw_body_equals_multipart(client, digit_png):
    raw = client.post("/encode", content=digit_png, headers={"content-type": "image/png"})
    multipart = client.post("/encode", files={"file": ("d.png", digit_png, "image/png")})
    assert raw.status_code == 200
    assert raw.json()["mu"] == multipart.json()["mu"]


def bar_png() -> bytes:
    """A 28x28 horizontal bar: a digit unlike the fixture's vertical stroke."""
    array = np.zeros((28, 28), dtype=np.uint8)
    array[12:15, 4:24] = 200
    return png_bytes(array)


def test_encode_batch_returns_list_in_order(client, digit_png):
    other = bar_png()
    files = [("file", ("a.png", digit_png, "image/png")), ("file", ("b.png", other, "image/png"))]
    r = client.post("/encode", files=files)
    assert r.status_code == 200
    batch = r.json()
    assert isinstance(batch, list) and len(batch) == 2
    single = client.post("/encode", files={"file": ("b.png", other, "image/png")}).json()
    np.testing.assert_allclose(batch[1]["mu"], single["mu"], rtol=1e-5, atol=1e-6)


def test_encode_agrees_with_the_module_itself(client, digit_png, tiny_model_file):
    module = artifact.load(tiny_model_file)[0]
    x = torch.from_numpy(decode_png(digit_png).astype(np.float32) / 255).view(1, 1, 28, 28)
    mu, sigma = module.encode(x)
    body = client.post("/encode", files={"file": ("d.png", digit_png, "image/png")}).json()
    np.testing.assert_allclose(body["mu"], mu[0].tolist(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(body["sigma"], sigma[0].tolist(), rtol=1e-5, atol=1e-6)


def test_decode_one_vector_gives_one_28x28_png(client):
    r = client.post("/decode", json={"z": [0.0] * LATENT})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert decode_png(r.content).shape == (28, 28)


def test_decode_json_pixels_in_unit_range(client):
    r = client.post("/decode?format=json", json={"z": [[0.0] * LATENT, [1.0] * LATENT]})
    assert r.status_code == 200
    body = r.json()
    pixels = np.array(body["pixels"])
    assert body["count"] == 2 and pixels.shape == (2, 28, 28)
    assert pixels.min() >= 0 and pixels.max() <= 1
    assert decode_png(base64.b64decode(body["images"][0])).shape == (28, 28)


def test_decode_accept_header_selects_json(client):
    r = client.post("/decode", json={"z": [0.0] * LATENT}, headers={"accept": "application/json"})
    assert r.status_code == 200  # an error body is JSON too
    assert r.headers["content-type"] == "application/json"
    assert r.json()["count"] == 1 and np.array(r.json()["pixels"]).shape == (1, 28, 28)


def test_sample_grid_png_and_seed_header(client):
    r = client.get("/sample", params={"n": 16, "seed": 3})
    assert r.status_code == 200 and r.headers["x-seed"] == "3"
    assert decode_png(r.content).shape == (4 * 30 - 2, 4 * 30 - 2)  # 4x4 grid, 2-pixel gaps


def test_sample_same_seed_same_images_and_z(client):
    a = client.get("/sample?n=5&seed=42&format=json").json()
    b = client.get("/sample?n=5&seed=42&format=json").json()
    c = client.get("/sample?n=5&seed=43&format=json").json()
    assert a["pixels"] == b["pixels"] and a["z"] == b["z"] and a["seed"] == 42
    assert a["z"] != c["z"]
    assert np.array(a["z"]).shape == (5, LATENT)


def test_sample_seed_is_reported_when_not_given(client):
    r = client.get("/sample?n=2&format=json").json()
    again = client.get(f"/sample?n=2&format=json&seed={r['seed']}").json()
    assert again["pixels"] == r["pixels"]


def test_sample_temperature_zero_decodes_the_origin(client):
    sampled = client.get("/sample?n=1&temperature=0&format=json").json()
    decoded = client.post("/decode?format=json", json={"z": [0.0] * LATENT}).json()
    np.testing.assert_allclose(sampled["pixels"], decoded["pixels"], atol=1e-6)


def test_sample_scale_upscales(client):
    r = client.get("/sample?n=1&scale=4")
    assert decode_png(r.content).shape == (112, 112)


def test_reconstruct_png_and_json(client, digit_png):
    r = client.post("/reconstruct", files={"file": ("d.png", digit_png, "image/png")})
    assert r.status_code == 200 and decode_png(r.content).shape == (28, 28)
    body = client.post(
        "/reconstruct?format=json", files={"file": ("d.png", digit_png, "image/png")}
    ).json()
    assert np.array(body["inputs"]).shape == (1, 28, 28) and body["count"] == 1


def test_interpolate_between_latents_is_a_strip(client):
    body = {"z_start": [-1.0] * LATENT, "z_end": [1.0] * LATENT}
    r = client.post("/interpolate?steps=5", json=body)
    assert r.status_code == 200
    assert decode_png(r.content).shape == (28, 5 * 30 - 2)
    z = np.array(client.post("/interpolate?steps=5&format=json", json=body).json()["z"])
    np.testing.assert_allclose(z[0], -1)
    np.testing.assert_allclose(z[2], 0, atol=1e-6)


def test_interpolate_between_two_images(client, digit_png):
    other = bar_png()
    files = [("file", ("a.png", digit_png, "image/png")), ("file", ("b.png", other, "image/png"))]
    r = client.post("/interpolate?steps=3&format=json", files=files)
    assert r.status_code == 200 and r.json()["count"] == 3
    mu_a = client.post("/encode", files={"file": ("a.png", digit_png, "image/png")}).json()["mu"]
    np.testing.assert_allclose(r.json()["z"][0], mu_a, rtol=1e-5, atol=1e-6)


def test_model_card(client):
    r = client.get("/model")
    assert r.status_code == 200
    body = r.json()
    assert body["latent_dim"] == LATENT and body["version"] == "0.0.1-test"
    assert body["device"] == "cpu" and body["card"]["image_shape"] == [1, 28, 28]


def test_health_ready_and_request_id(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    r = client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32


def test_bfloat16_precision_serves_close_to_float32(client, make_client, digit_png):
    full, half = client, make_client(precision="bfloat16")
    assert half.get("/model").json()["precision"] == "bfloat16"
    query = "/sample?n=4&seed=11&format=json"
    a, b = (np.array(c.get(query).json()["pixels"]) for c in (full, half))
    assert a.shape == b.shape == (4, 28, 28)
    assert 0 < np.abs(a - b).max() < 0.05  # rounded, not different
    mu_full, mu_half = (
        np.array(c.post("/encode", content=digit_png, headers=PNG).json()["mu"])
        for c in (full, half)
    )
    np.testing.assert_allclose(mu_half, mu_full, atol=0.05)


def test_unknown_precision_is_refused(settings_for):
    with pytest.raises(ValidationError):
        settings_for(precision="float16")
