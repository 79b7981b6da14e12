"""End to end with the real shipped model: the service as users run it by default."""

import io

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from model import artifact
from model.data import load_mnist
from tests.conftest import SHIPPED_MODEL


@pytest.fixture(scope="module")
def client():
    settings = Settings(log_format="text")  # every default: the shipped model
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def test_digits(mnist_dir):
    images, labels = load_mnist("test", mnist_dir)
    return images[:8], labels[:8]


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_serves_the_shipped_model_by_default(client):
    body = client.get("/model").json()
    assert Settings().model_path == SHIPPED_MODEL
    assert body["latent_dim"] == body["card"]["latent_dim"] == 32
    assert body["card"]["metrics"]["test_nll_iwae"] > 0


def test_encode_of_a_test_digit_agrees_with_the_module(client, test_digits):
    images, _ = test_digits
    module = artifact.load(SHIPPED_MODEL)[0]
    x = torch.from_numpy(images[:1]).float().div(255).unsqueeze(1)
    mu, sigma = module.encode(x)
    body = client.post("/encode", files={"file": ("7.png", png(images[0]), "image/png")}).json()
    np.testing.assert_allclose(body["mu"], mu[0].tolist(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(body["sigma"], sigma[0].tolist(), rtol=1e-4, atol=1e-5)


def test_reconstructions_resemble_their_inputs(client, test_digits):
    images, _ = test_digits
    files = [("file", (f"{i}.png", png(image), "image/png")) for i, image in enumerate(images)]
    body = client.post("/reconstruct?format=json", files=files).json()
    recon, inputs = np.array(body["pixels"]), images / 255.0
    for i in range(len(images)):
        own = np.abs(recon[i] - inputs[i]).mean()
        others = np.mean(
            [np.abs(recon[i] - inputs[j]).mean() for j in range(len(images)) if j != i]
        )
        assert own < 0.6 * others  # closer to its own input than to any other digit on average


def test_samples_look_like_digits_not_noise(client):
    body = client.get("/sample?n=64&seed=0&format=json").json()
    pixels = np.array(body["pixels"])
    ink = (pixels > 0.5).mean(axis=(1, 2))
    assert 0.03 < ink.mean() < 0.35  # MNIST digits cover ~10-20 % of the frame
    assert (pixels[:, :3, :] < 0.2).mean() > 0.95  # and leave the border black


def test_a_photo_of_a_digit_encodes_near_the_clean_digit(client, test_digits):
    images, _ = test_digits
    digit = Image.fromarray(255 - images[0]).resize((300, 300), Image.Resampling.BILINEAR)
    photo = Image.new("L", (640, 480), 235)
    photo.paste(digit, (170, 90))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    clean = client.post("/encode", files={"file": ("a.png", png(images[0]), "image/png")}).json()
    photo_mu = client.post("/encode", files={"file": ("b.jpg", buffer.getvalue(), "image/jpeg")})
    other = client.post("/encode", files={"file": ("c.png", png(images[1]), "image/png")}).json()
    distance = np.linalg.norm(np.subtract(photo_mu.json()["mu"], clean["mu"]))
    assert distance < np.linalg.norm(np.subtract(other["mu"], clean["mu"]))
