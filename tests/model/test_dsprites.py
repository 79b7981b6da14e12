"""dSprites from its factors (model/dsprites.py), the conv VAE at 64x64, training and export."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model import artifact, dsprites, dsprites_card
from model import export as export_module
from model.train import TrainConfig, load_checkpoint, parse_args, save_checkpoint, train
from model.vae import VAE, VAEConfig

TINY_CONV = VAEConfig(
    arch="conv",
    latent_dim=3,
    channels=[4, 4, 8, 8],
    conv_hidden=16,
    image_shape=[1, 64, 64],
    activation="relu",
)


def test_factor_grid_has_every_combination_once():
    assert dsprites.N_IMAGES == 737_280 == 3 * 6 * 40 * 32 * 32
    assert dsprites.factors_of(np.array([0])).tolist() == [[0, 0, 0, 0, 0]]
    last = dsprites.factors_of(np.array([dsprites.N_IMAGES - 1]))
    assert last.tolist() == [[2, 5, 39, 31, 31]]
    index = np.random.default_rng(0).integers(0, dsprites.N_IMAGES, 1000)
    np.testing.assert_array_equal(dsprites.index_of(dsprites.factors_of(index)), index)
    with pytest.raises(IndexError):
        dsprites.factors_of(np.array([dsprites.N_IMAGES]))


def test_images_are_binary_deterministic_and_follow_their_factors():
    index = np.random.default_rng(1).integers(0, dsprites.N_IMAGES, 64)
    x = dsprites.images(index)
    assert x.shape == (64, 1, 64, 64) and x.dtype == torch.float32
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(dsprites.images(index), x)
    # each shape covers ~256 pixels at scale 1 and a quarter of that at scale 0.5
    for shape in range(3):
        big = dsprites.render(np.array([[shape, 5, 0, 16, 16]]))
        small = dsprites.render(np.array([[shape, 0, 0, 16, 16]]))
        assert 240 <= big.sum() <= 270 and 55 <= small.sum() <= 70
    # position x moves the shape right, position y moves it down
    left, right = dsprites.render(np.array([[0, 5, 0, 0, 16], [0, 5, 0, 31, 16]]))
    top, bottom = dsprites.render(np.array([[0, 5, 0, 16, 0], [0, 5, 0, 16, 31]]))
    assert np.argwhere(left)[:, 1].mean() < np.argwhere(right)[:, 1].mean()
    assert np.argwhere(top)[:, 0].mean() < np.argwhere(bottom)[:, 0].mean()


def test_split_holds_out_a_fixed_five_percent():
    train, test = dsprites.split()
    assert len(test) == round(0.05 * dsprites.N_IMAGES) and len(train) + len(test) == 737_280
    assert not np.intersect1d(train, test).size
    np.testing.assert_array_equal(dsprites.split()[1], test)


def test_held_out_choices_are_in_random_order():
    index = dsprites_card.held_out(300)
    assert np.isin(index, dsprites.split()[1]).all()
    assert set(dsprites.factors_of(index[:60])[:, 0]) == {0, 1, 2}  # no prefix of one shape


def test_batches_stream_the_requested_number_of_images():
    rng = np.random.default_rng(0)
    sizes = [len(b) for b in dsprites.batches(np.arange(50), 16, 70, rng)]
    assert sizes == [16, 16, 16, 16, 6]


def test_imagefolder_export(tmp_path: Path):
    out = dsprites.export_imagefolder(tmp_path / "sample", per_shape=2)
    for shape in dsprites.SHAPES:
        files = sorted((out / shape).glob("*.png"))
        assert len(files) == 2
        assert Image.open(files[0]).size == (64, 64)


def test_conv_vae_at_64x64_and_mnist_layout_unchanged():
    model = VAE(TINY_CONV).eval()
    x = dsprites.images(np.arange(5))
    mu, sigma = model.encode(x)
    assert mu.shape == sigma.shape == (5, 3)
    assert model.decode(mu).shape == (5, 1, 64, 64)
    assert artifact.script(model).reconstruct(x).shape == (5, 1, 64, 64)
    # the 28x28 conv of existing checkpoints keeps its layer names and shapes
    mnist = VAE(VAEConfig(arch="conv")).state_dict()
    assert mnist["encoder.5.weight"].shape == (512, 64 * 7 * 7)
    assert mnist["decoder.7.weight"].shape == (32, 1, 4, 4)
    assert VAE(VAEConfig(arch="conv")).decode(torch.zeros(2, 32)).shape == (2, 1, 28, 28)


def test_dsprites_defaults_and_a_tiny_training_run(tmp_path: Path):
    cfg, _, _, _ = parse_args(["--dataset", "dsprites"])
    assert cfg.model.image_shape == [1, 64, 64] and cfg.model.channels == [32, 32, 64, 64]
    assert (cfg.beta, cfg.model.latent_dim, cfg.model.activation) == (4.0, 10, "relu")
    assert parse_args([])[0].model == VAEConfig()  # MNIST's defaults untouched
    cfg = TrainConfig(model=TINY_CONV, epochs=1, batch_size=32, dataset="dsprites")
    cfg.epoch_images, cfg.val_size, cfg.beta = 64, 32, 4.0
    best = train(cfg, tmp_path / "run")
    model, state = load_checkpoint(best)
    assert state["config"]["dataset"] == "dsprites"
    assert model.decode(torch.zeros(1, 3)).shape == (1, 1, 64, 64)


def test_export_round_trip_with_card_and_heads(tmp_path: Path, monkeypatch):
    for name, value in [
        ("HEADS_TRAIN", 60),
        ("HEADS_TEST", 30),
        ("SCORE_IMAGES", 10),
        ("SPOT_CHECK_IMAGES", 4),
    ]:
        monkeypatch.setattr(dsprites_card, name, value)
    torch.manual_seed(0)
    model = VAE(TINY_CONV)
    cfg = TrainConfig(model=TINY_CONV, epochs=2, dataset="dsprites", epoch_images=100)
    optimizer = torch.optim.Adam(model.parameters())
    save_checkpoint(tmp_path / "best.pt", model, optimizer, cfg, 1, -1.0, {"val_elbo": -1.0})
    out = tmp_path / "vae_dsprites.pt"
    export_module.main(
        [str(tmp_path / "best.pt"), "--out", str(out), "--components", "1", "--score-k", "2"]
    )
    module, card = artifact.load(out)
    assert card["image_shape"] == [1, 64, 64] and card["latent_dim"] == 3
    assert card["classes"] == ["square", "ellipse", "heart"]
    assert card["preprocessor"] == "resize" and card["likelihood"] == "bernoulli"
    assert card["training"]["images_seen"] == 200
    assert json.loads((tmp_path / "model_card_dsprites.json").read_text()) == card
    assert "vae-dsprites" in (tmp_path / "MODEL_CARD_dsprites.md").read_text()
    assert not (tmp_path / "model_card.json").exists()  # MNIST's card is not overwritten
    x = dsprites.images(np.arange(4))
    probabilities, mu = module.classify(x)
    assert probabilities.shape == (4, 3) and mu.shape == (4, 3)
    assert module.digit_latents(
        torch.tensor([0, 2]), torch.zeros(2, 4, 3), torch.rand(2, 4), 1.0
    ).shape == (2, 3)
    eager, _ = export_module.load_torchscript_vae(out)
    torch.testing.assert_close(eager.reconstruct(x), module.reconstruct(x))


def test_shipped_dsprites_model_and_its_card():
    path = Path(__file__).resolve().parents[2] / "model" / "vae_dsprites.pt"
    assert path.stat().st_size <= 10_000_000
    module, card = artifact.load(path)
    assert card["name"] == "vae-dsprites" and card["image_shape"] == [1, 64, 64]
    assert card["latent_dim"] == 10 and card["classes"] == ["square", "ellipse", "heart"]
    assert card["preprocessor"] == "resize" and card["likelihood"] == "bernoulli"
    assert json.loads((path.parent / "model_card_dsprites.json").read_text()) == card
    x = dsprites.images(dsprites_card.held_out(8))
    mu, sigma = module.encode(x)
    assert mu.shape == sigma.shape == (8, 10)
    assert module.reconstruct(x).shape == (8, 1, 64, 64)
    probabilities, _ = module.classify(x)
    assert probabilities.shape == (8, 3)
