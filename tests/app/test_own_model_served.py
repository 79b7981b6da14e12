"""A colour model end to end: a folder of 32x32 RGB images in three class folders, made
here, goes through vae-train (1 epoch) -> vae-export -> the service, which serves it by its
contract alone."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model import export as export_module
from model import train as train_module
from tests.conftest import started, tiny_settings
from tests.model.test_own_images import COLOURS, TINY, shapes_folder

CLASSES = sorted(COLOURS)


@pytest.fixture(scope="module")
def own_client(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    folder = shapes_folder(root / "shapes")
    train_module.main(["--images", str(folder), *TINY, "--epochs", "1", "--out", str(root / "run")])
    out = root / "shapes.pt"
    export_module.main([str(root / "run" / "best.pt"), "--out", str(out), "--score-k", "5"])
    client = started(tiny_settings(out))
    yield client
    client.__exit__(None, None, None)


def png_of(path: Path) -> bytes:
    return path.read_bytes()


def upload(client) -> dict:
    image = Image.new("RGB", (48, 40), (230, 230, 230))
    image.paste((220, 40, 40), (10, 10, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return {"file": ("red.png", buffer.getvalue(), "image/png")}


def test_the_model_route_shows_its_shape_classes_and_preprocessor(own_client):
    contract = own_client.get("/model").json()["contract"]
    assert contract["image_shape"] == [3, 32, 32] and contract["classes"] == CLASSES
    assert contract["preprocessor"] == "resize"
    assert contract["likelihood"] == "discretised_logistic"


def test_encode_gives_mu_and_sigma_of_the_latent_size(own_client):
    r = own_client.post("/encode", files=upload(own_client))
    assert r.status_code == 200, r.text
    assert len(r.json()["mu"]) == len(r.json()["sigma"]) == 3


@pytest.mark.parametrize("route", ["sample", "reconstruct"])
def test_sample_and_reconstruct_return_rgb_pngs_of_32x32(own_client, route):
    if route == "sample":
        r = own_client.get("/sample?n=1&seed=0&class=square")
    else:
        r = own_client.post("/reconstruct", files=upload(own_client))
    assert r.status_code == 200, r.text
    image = Image.open(io.BytesIO(r.content))
    assert image.mode == "RGB" and image.size == (32, 32)
    assert np.asarray(image).std() > 0


def test_classify_answers_with_the_folder_class_names(own_client):
    r = own_client.post("/classify", files=upload(own_client))
    assert r.status_code == 200, r.text
    assert len(r.json()["probabilities"]) == 3
    assert r.json()["class"] in CLASSES


def test_the_v2_encoder_declares_the_colour_shape(own_client):
    metadata = own_client.get("/v2/models/vae-encoder").json()
    assert metadata["inputs"][0]["shape"] == [-1, 3, 32, 32]
