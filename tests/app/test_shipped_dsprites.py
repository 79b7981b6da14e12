"""The second shipped model, model/vae_dsprites.pt, served by the same code with no setting
but its path: encode, sample by class, classify, /score and /v2 metadata, in-process."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model import dsprites
from tests.conftest import started, tiny_settings


@pytest.fixture(scope="module")
def dsprites_client():
    client = started(tiny_settings(Path("model/vae_dsprites.pt")))  # as users name it
    yield client
    client.__exit__(None, None, None)


def sprite_png(shape: int, side: int = 64) -> bytes:
    """A large sprite of `shape` (0 square, 1 ellipse, 2 heart), centred, as a PNG."""
    factors = np.array([[shape, 5, 0, 16, 16]])
    image = Image.fromarray(dsprites.render(factors)[0] * 255).resize((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_it_is_served_by_its_contract(dsprites_client):
    contract = dsprites_client.get("/model").json()["contract"]
    assert contract["image_shape"] == [1, 64, 64] and contract["latent_dim"] == 10
    assert contract["classes"] == ["square", "ellipse", "heart"]
    assert contract["preprocessor"] == "resize"


def test_encode_a_sprite_and_a_larger_picture_of_one(dsprites_client):
    for side in (64, 200):  # resize takes sizes other than the model's
        files = {"file": ("s.png", sprite_png(1, side), "image/png")}
        r = dsprites_client.post("/encode", files=files)
        assert r.status_code == 200, r.text
        assert len(r.json()["mu"]) == 10


def test_sample_by_class_gives_64x64_sprites(dsprites_client):
    r = dsprites_client.get("/sample?class=heart&n=1&seed=0")
    assert r.status_code == 200
    image = Image.open(io.BytesIO(r.content))
    assert image.size == (64, 64) and image.mode == "L"


def test_classify_answers_the_shape_of_clear_sprites(dsprites_client):
    names = []
    for shape in range(3):
        files = {"file": ("s.png", sprite_png(shape), "image/png")}
        r = dsprites_client.post("/classify", files=files)
        assert r.status_code == 200, r.text
        assert len(r.json()["probabilities"]) == 3
        names.append(r.json()["class"])
    assert names.count(names[0]) < 3  # not one answer for every shape
    assert set(names) <= set(dsprites.SHAPES)


def test_score_and_v2_metadata(dsprites_client):
    files = {"file": ("s.png", sprite_png(0), "image/png")}
    score = dsprites_client.post("/score?k=10", files=files)
    assert score.status_code == 200 and 0 <= score.json()["percentile"] <= 100
    encoder = dsprites_client.get("/v2/models/vae-encoder").json()
    assert encoder["inputs"][0]["shape"] == [-1, 1, 64, 64]
    classify = dsprites_client.get("/v2/models/vae-classify").json()
    assert classify["outputs"][0]["shape"] == [-1, 3]
