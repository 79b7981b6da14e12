"""Training lowers the loss, checkpoints resume, and the export round trip is exact."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from model import artifact
from model import train as train_module
from model.export import REQUIRED_METHODS, read_card
from model.train import TrainConfig, load_checkpoint, train
from model.vae import VAEConfig


@pytest.fixture
def small_run(tmp_path: Path, mnist_dir: Path, monkeypatch) -> TrainConfig:
    """A 2-epoch run on 2,000 training digits."""
    real_load = train_module.load_mnist

    def load_small(split, data_dir=None):
        images, labels = real_load(split, data_dir)
        return images[:2500], labels[:2500]

    monkeypatch.setattr(train_module, "load_mnist", load_small)
    return TrainConfig(
        model=VAEConfig(latent_dim=8, hidden=[64]),
        epochs=3,
        batch_size=100,
        lr=3e-3,
        kl_warmup_epochs=1,
        val_size=500,
        data_dir=str(mnist_dir),
    )


def test_short_training_lowers_the_loss_and_resumes(small_run: TrainConfig, tmp_path: Path):
    best = train(small_run, tmp_path / "run")
    metrics = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(metrics) == 3
    assert metrics[-1]["val_elbo"] > metrics[0]["val_elbo"] + 5  # nats per image
    assert best.exists()

    small_run.epochs = 4
    train(small_run, tmp_path / "run", resume=tmp_path / "run" / "last.pt")
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in metrics] == [1, 2, 3, 4]


def test_iwae_objective_trains_and_selects_on_its_own_bound(small_run: TrainConfig, tmp_path):
    small_run.iw_samples, small_run.epochs = 3, 2
    best = train(small_run, tmp_path / "run")
    metrics = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert metrics[-1]["val_elbo"] > metrics[0]["val_elbo"]
    state = torch.load(best, weights_only=True)
    assert state["selected_by"] == "val_iwae_k3"
    chosen = max(metrics, key=lambda m: m["val_iwae_k3"])
    assert state["epoch"] + 1 == chosen["epoch"]
    assert state["val"]["val_iwae_k3"] == pytest.approx(chosen["val_iwae_k3"])
    assert state["val"]["val_iwae_k3"] >= state["val"]["val_elbo"] - 1  # the tighter bound


def test_checkpoint_rebuilds_model_from_its_own_config(small_run: TrainConfig, tmp_path: Path):
    small_run.epochs = 1
    best = train(small_run, tmp_path / "run")
    model, state = load_checkpoint(best)
    assert model.latent_dim == 8 and state["config"]["model"]["hidden"] == [64]


def test_fine_tuning_starts_from_the_checkpoint_with_its_architecture(
    small_run: TrainConfig, tmp_path: Path
):
    small_run.epochs = 2
    base = train(small_run, tmp_path / "base")
    base_elbo = torch.load(base, weights_only=True)["val"]["val_elbo"]
    # A config naming another architecture: the checkpoint's wins, and its weights are the start.
    tune = dataclasses.replace(
        small_run,
        model=VAEConfig(latent_dim=32, hidden=[512]),
        epochs=1,
        lr=1e-4,
        iw_samples=2,
        kl_warmup_epochs=0,
        init_from=str(base),
    )
    tuned = train(tune, tmp_path / "tune")
    model, state = load_checkpoint(tuned)
    assert model.latent_dim == 8 and state["config"]["model"]["hidden"] == [64]
    assert state["config"]["init_from"] == str(base)
    assert state["val"]["val_elbo"] > base_elbo - 3  # started from trained weights, not afresh


def test_export_round_trip_matches_eager(tiny_model, tiny_model_file: Path):
    scripted = artifact.load(tiny_model_file)[0]
    x = torch.rand(6, 1, 28, 28)
    for eager_out, scripted_out in zip(tiny_model.encode(x), scripted.encode(x), strict=True):
        torch.testing.assert_close(eager_out, scripted_out)
    z = torch.randn(6, 4)
    torch.testing.assert_close(tiny_model.decode(z), scripted.decode(z))
    torch.testing.assert_close(tiny_model.decode_logits(z), scripted.decode_logits(z))
    torch.testing.assert_close(tiny_model.reconstruct(x), scripted.reconstruct(x))
    torch.manual_seed(1)
    a = scripted.sample(3, 0.7)
    torch.manual_seed(1)
    torch.testing.assert_close(a, tiny_model.sample(3, 0.7))


def test_exported_file_has_contract_and_card(tiny_model_file: Path):
    scripted = artifact.load(tiny_model_file)[0]
    assert all(hasattr(scripted, name) for name in REQUIRED_METHODS)
    card = read_card(tiny_model_file)
    assert card["latent_dim"] == 4 and card["image_shape"] == [1, 28, 28]
    assert card["version"] == "0.0.1-test" and len(card["dataset"]["sha256"]) == 4


def test_fine_tuning_defaults_to_no_kl_warm_up():
    base = ["--out", "x"]
    assert train_module.parse_args(base)[0].kl_warmup_epochs == 10
    assert train_module.parse_args([*base, "--init-from", "a.pt"])[0].kl_warmup_epochs == 0
    explicit = [*base, "--init-from", "a.pt", "--kl-warmup-epochs", "3"]
    assert train_module.parse_args(explicit)[0].kl_warmup_epochs == 3


def test_resume_honours_where_it_runs(small_run: TrainConfig, tmp_path: Path):
    small_run.epochs = 1
    train(small_run, tmp_path / "run")
    last = str(tmp_path / "run" / "last.pt")
    argv = ["--resume", last, "--epochs", "2", "--device", "cpu", "--threads", "2"]
    cfg = train_module.parse_args([*argv, "--data-dir", "/elsewhere"])[0]
    assert (cfg.device, cfg.threads, cfg.data_dir, cfg.epochs) == ("cpu", 2, "/elsewhere", 2)
    assert cfg.model == small_run.model and cfg.lr == small_run.lr  # the run's own config


def test_the_card_describes_the_exported_checkpoint_and_its_architecture(
    small_run: TrainConfig, tmp_path: Path
):
    import argparse

    from model.export import card_from_checkpoint, card_markdown

    small_run.iw_samples, small_run.epochs = 2, 1
    best = train(small_run, tmp_path / "run")
    args = argparse.Namespace(checkpoint=str(best), run_info=None, eval=None, version="0.1")
    _, card = card_from_checkpoint(args)
    checkpoint = card["training"]["checkpoint"]
    assert checkpoint["epoch"] == 1 and checkpoint["selected_by"] == "val_iwae_k2"
    assert set(card["architecture"]) == {"arch", "latent_dim", "hidden"}  # no conv fields
    assert "binary" in card["inputs"] and "grey" in card["inputs"]
    text = card_markdown(card)
    assert "chosen by val_iwae_k2" in text and "channels" not in text
