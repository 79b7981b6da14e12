"""Shared fixtures: where MNIST is, and a tiny untrained VAE exported to a temp dir."""

import os
from pathlib import Path

import pytest
import torch

from model.export import build_card, export
from model.vae import VAE, VAEConfig

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = ROOT / "model" / "vae_mnist.pt"
TINY_CONFIG = VAEConfig(arch="mlp", latent_dim=4, hidden=[16])

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    path = Path(os.environ.get("MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))
    if not (path / "t10k-images-idx3-ubyte.gz").exists():
        pytest.fail(f"MNIST not found at {path}: set MNIST_DIR")
    return path


@pytest.fixture
def tiny_model() -> VAE:
    torch.manual_seed(0)
    return VAE(TINY_CONFIG).eval()


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A tiny untrained VAE, exported exactly as the shipped one is."""
    torch.manual_seed(0)
    model = VAE(TINY_CONFIG)
    card = build_card(
        {"arch": "mlp", "latent_dim": 4, "hidden": [16], "channels": [32, 64], "conv_hidden": 512},
        {"config": {"iw_samples": 1, "epochs": 0}},
        {"test_nll_iwae": 543.0, "iwae_k": 10},
        "0.0.1-test",
    )
    return export(model, card, tmp_path_factory.mktemp("tiny") / "tiny.pt")
