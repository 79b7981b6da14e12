"""The `resize` preprocessor (app.resizing) and a model of another shape served end to end:
a tiny 3x32x32 RGB VAE whose card names `resize` and no classes."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app import resizing
from model.export import build_card, export
from model.vae import VAE, VAEConfig
from tests.conftest import started, tiny_settings

RGB = (3, 32, 32)


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_an_image_of_the_model_size_is_taken_as_it_is():
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x = resizing.preprocess(encoded(Image.fromarray(pixels)), 10**6, RGB)
    assert x.shape == RGB and x.dtype == np.float32
    np.testing.assert_allclose(x, pixels.transpose(2, 0, 1) / 255.0, atol=1e-6)


def test_a_wide_image_is_centre_cropped_to_the_aspect_then_area_resized():
    wide = np.zeros((32, 96, 3), dtype=np.uint8)
    wide[:, :32] = (255, 0, 0)  # red left third, green middle, blue right third
    wide[:, 32:64] = (0, 255, 0)
    wide[:, 64:] = (0, 0, 255)
    x = resizing.preprocess(encoded(Image.fromarray(wide)), 10**6, (3, 16, 16))
    assert x.shape == (3, 16, 16)
    np.testing.assert_allclose(x[:, 8, 8], [0, 1, 0])  # only the green middle is kept


def test_a_tall_image_keeps_its_middle_rows():
    tall = np.zeros((90, 30), dtype=np.uint8)
    tall[30:60] = 200
    x = resizing.preprocess(encoded(Image.fromarray(tall)), 10**6, (1, 10, 10))
    np.testing.assert_allclose(x, 200 / 255, atol=1e-6)


def test_colour_becomes_luma_for_a_grey_model_and_grey_becomes_rgb_for_a_colour_one():
    red = encoded(Image.new("RGB", (8, 8), (255, 0, 0)))
    assert resizing.preprocess(red, 10**6, (1, 8, 8)) == pytest.approx(76 / 255, abs=1e-6)
    grey = resizing.preprocess(encoded(Image.new("L", (8, 8), 100)), 10**6, (3, 8, 8))
    np.testing.assert_allclose(grey, 100 / 255, atol=1e-6)


def test_transparency_is_composited_on_black():
    half = Image.new("RGBA", (8, 8), (255, 255, 255, 128))
    x = resizing.preprocess(encoded(half), 10**6, (3, 8, 8))
    np.testing.assert_allclose(x, 128 / 255, atol=1 / 255)
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([255, 255, 255] * 256)
    x = resizing.preprocess(encoded(palette, transparency=0), 10**6, (1, 8, 8))
    assert x.max() == 0


def test_sixteen_bit_grey_is_scaled_by_its_brightest_pixel():
    wide = np.zeros((8, 8), dtype=np.uint16)
    wide[:, 4:] = 1000
    x = resizing.preprocess(encoded(Image.fromarray(wide)), 10**6, (1, 8, 8))
    assert x.max() == pytest.approx(1.0) and x.min() == 0


def test_exif_orientation_is_applied():
    bar = Image.new("L", (40, 20), 0)
    bar.paste(255, (0, 0, 20, 20))  # white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise when shown
    x = resizing.preprocess(encoded(bar, "JPEG", exif=exif.tobytes()), 10**6, (1, 40, 20))
    assert x[0, :20].mean() > 0.9 and x[0, 20:].mean() < 0.1  # white on top once rotated


def test_a_large_jpeg_is_decoded_reduced_and_still_resized_exactly():
    photo = Image.fromarray(np.full((3000, 4000, 3), (10, 200, 30), dtype=np.uint8))
    x = resizing.preprocess(encoded(photo, "JPEG", quality=95), 10**8, RGB)
    assert x.shape == RGB
    np.testing.assert_allclose(x[:, 16, 16], np.array([10, 200, 30]) / 255, atol=0.03)


@pytest.fixture(scope="module")
def rgb_model_file(tmp_path_factory) -> Path:
    """A tiny untrained RGB VAE, with a card naming its shape and the resize preprocessor."""
    torch.manual_seed(0)
    config = VAEConfig(arch="mlp", latent_dim=4, hidden=[16], image_shape=list(RGB))
    architecture = {"arch": "mlp", "latent_dim": 4, "hidden": [16], "image_shape": list(RGB)}
    card = build_card(architecture, {"config": {}}, {}, "0.0.1-rgb")
    card = {**card, "name": "vae-rgb-test", "image_shape": list(RGB), "classes": []}
    card["preprocessor"] = "resize"
    return export(VAE(config), card, tmp_path_factory.mktemp("rgb") / "rgb.pt")


@pytest.fixture(scope="module")
def rgb_client(rgb_model_file):
    client = started(tiny_settings(rgb_model_file))
    yield client
    client.__exit__(None, None, None)


def test_a_colour_model_serves_rgb_images_of_its_own_size(rgb_client):
    assert rgb_client.get("/model").json()["contract"]["image_shape"] == list(RGB)
    sample = Image.open(io.BytesIO(rgb_client.get("/sample?n=1&seed=0").content))
    assert sample.mode == "RGB" and sample.size == (32, 32)
    grid = Image.open(io.BytesIO(rgb_client.get("/sample?n=4&seed=0&scale=2").content))
    assert grid.mode == "RGB" and grid.size == (2 * (2 * 32 + 2),) * 2  # gap scaled too
    pixels = rgb_client.get("/sample?n=2&seed=0&format=json").json()["pixels"]
    assert np.asarray(pixels).shape == (2, 32, 32, 3)


def test_a_colour_model_encodes_and_reconstructs_an_rgb_photo(rgb_client):
    photo = np.zeros((48, 64, 3), dtype=np.uint8)
    photo[10:40, 20:50] = (200, 40, 90)
    files = {"file": ("shape.png", encoded(Image.fromarray(photo)), "image/png")}
    r = rgb_client.post("/encode?include_input=true", files=files)
    assert r.status_code == 200, r.text
    result = r.json()  # one image: its result alone
    assert len(result["mu"]) == len(result["sigma"]) == 4
    assert np.asarray(result["input"]).shape == (32, 32, 3)
    reconstruction = rgb_client.post("/reconstruct", files=files)
    image = Image.open(io.BytesIO(reconstruction.content))
    assert image.mode == "RGB" and image.size == (32, 32)


def test_a_colour_model_declares_its_v2_tensors_and_has_no_classes(rgb_client):
    encoder = rgb_client.get("/v2/models/vae-encoder").json()
    assert encoder["inputs"][0]["shape"] == [-1, *RGB]
    decoder = rgb_client.get("/v2/models/vae-decoder").json()
    assert decoder["outputs"][0]["shape"] == [-1, *RGB]
    assert rgb_client.get("/sample?class=cat").status_code == 501
    assert rgb_client.post("/classify", files={"file": ("a.png", b"x")}).status_code == 501


def test_a_colour_model_returns_its_rgb_inputs_beside_the_images(rgb_client):
    photo = np.zeros((32, 32, 3), dtype=np.uint8)
    photo[8:24, 8:24] = (255, 0, 0)
    files = {"file": ("red.png", encoded(Image.fromarray(photo)), "image/png")}
    inputs = rgb_client.post("/reconstruct?format=json", files=files).json()["inputs"]
    np.testing.assert_allclose(np.asarray(inputs)[0], photo / 255, atol=1e-6)
    two = [("file", ("a.png", files["file"][1], "image/png"))] * 2
    r = rgb_client.post("/interpolate?format=json&steps=2", files=two)
    assert np.asarray(r.json()["inputs"]).shape == (2, 32, 32, 3)
