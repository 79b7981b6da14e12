"""Shared fixtures: where MNIST is, a tiny untrained VAE exported to a temp dir, and the
service running on it in-process; and the summary of skipped tests at the end of a run."""

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from model.export import build_card, export
from model.fit_heads import Digits, HeadsConfig, fit_heads
from model.vae import VAE, VAEConfig

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = ROOT / "model" / "vae_mnist.pt"
LATENT = 4  # latent size of the tiny model
TINY_CONFIG = VAEConfig(arch="mlp", latent_dim=LATENT, hidden=[16])

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


TINY_ARCHITECTURE = {
    "arch": "mlp",
    "latent_dim": 4,
    "hidden": [16],
    "channels": [32, 64],
    "conv_hidden": 512,
}


def tiny_card() -> dict:
    return build_card(
        TINY_ARCHITECTURE,
        {"config": {"iw_samples": 1, "epochs": 0}},
        {"test_nll_iwae": 543.0, "iwae_k": 10},
        "0.0.1-test",
    )


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A tiny untrained VAE, exported exactly as the shipped one was before it had heads:
    an "older model file" without score, classify or conditional sampling."""
    torch.manual_seed(0)
    return export(VAE(TINY_CONFIG), tiny_card(), tmp_path_factory.mktemp("tiny") / "tiny.pt")


def tiny_digits(n: int, seed: int) -> Digits:
    """Random grey images labelled 0-9 in turn: enough to fit every head quickly."""
    generator = torch.Generator().manual_seed(seed)
    return Digits(torch.rand(n, 1, 28, 28, generator=generator), torch.arange(n) % 10)


@pytest.fixture(scope="session")
def tiny_heads_model_file(tmp_path_factory) -> Path:
    """The tiny VAE with heads fitted on random images (vae-export's default path)."""
    torch.manual_seed(0)
    cfg = HeadsConfig(n_components=2, em_iterations=5, classifier_epochs=2, score_k=5)
    model, figures = fit_heads(
        VAE(TINY_CONFIG), TINY_ARCHITECTURE, tiny_digits(200, 1), tiny_digits(50, 2), cfg
    )
    card = {**tiny_card(), "capabilities": figures}
    return export(model, card, tmp_path_factory.mktemp("tiny-heads") / "tiny-heads.pt")


def tiny_settings(model_path: Path, **overrides) -> Settings:
    """Settings on a tiny model file, with overrides."""
    # device pinned: the tests assert CPU behaviour even on a machine with CUDA
    defaults = {"model_path": model_path, "log_format": "text", "device": "cpu"}
    return Settings(**{**defaults, **overrides})


def started(settings: Settings) -> TestClient:
    """An in-process client with the app's lifespan started (model loaded and warmed)."""
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    client.__enter__()
    return client


@pytest.fixture
def settings_for(tiny_model_file: Path) -> Callable[..., Settings]:
    """Settings on the tiny model, with overrides."""

    def make(model_path: Path = tiny_model_file, **overrides) -> Settings:
        return tiny_settings(model_path, **overrides)

    return make


@pytest.fixture
def make_client(settings_for) -> Iterator[Callable[..., TestClient]]:
    """A fresh started app per call, with settings overrides; all closed at teardown. For a
    test with its own settings, or one that changes the app's state (draining, readiness, a
    patched model): `client` and `heads_client` are shared."""
    clients: list[TestClient] = []

    def make(**overrides) -> TestClient:
        clients.append(started(settings_for(**overrides)))
        return clients[-1]

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def client(tiny_model_file: Path) -> Iterator[TestClient]:
    """The service on the tiny model with the default test settings, started once for the
    whole session: a test using it only sends requests (metrics are asserted as deltas)."""
    client = started(tiny_settings(tiny_model_file))
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def heads_client(tiny_heads_model_file: Path) -> Iterator[TestClient]:
    """The service on the tiny model with score, classify and conditional sampling, shared
    like `client`."""
    client = started(tiny_settings(tiny_heads_model_file))
    yield client
    client.__exit__(None, None, None)


@pytest.fixture
def digit_png() -> bytes:
    """A 28x28 white-on-black stroke, like an MNIST '1'."""
    array = np.zeros((28, 28), dtype=np.uint8)
    array[4:24, 13:16] = 255
    return png_bytes(array)


def png_bytes(array: np.ndarray) -> bytes:
    """A greyscale uint8 array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Every skip, grouped by reason, last: a run that skipped tools' tests says so plainly
    (in CI, CI=true, those tests fail instead: tests/helpers.py)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.section(f"skipped: {len(skipped)}, by reason", sep="=")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count:4d}  {reason}")
