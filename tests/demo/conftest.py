"""Fixtures: a real vae-serve process on a free port (tiny models: MNIST-like, and a
dSprites-like one of 64x64 shapes) and headless Chromium.

The browser is the system's Chromium (Debian package `chromium`, or $CHROMIUM) driven by the
`playwright` package; `playwright install` is never needed. Without them these tests skip,
except in CI (CI=true), where they fail: .ci/browser-tools.sh installs both.
"""

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from model.export import build_card, export
from model.fit_heads import Digits, HeadsConfig, fit_heads
from model.vae import VAE, VAEConfig
from tests.helpers import free_port, unavailable, wait_ready

READY_TIMEOUT_S = 60
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class Server:
    url: str
    latent_dim: int


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, {}


@contextmanager
def serving(model_path: Path, log: Path) -> Iterator[Server]:
    """`vae-serve` (the same entry point, run with this interpreter) on `model_path`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "VAE_MODEL_PATH": str(model_path),
        "VAE_PORT": str(port),
        "VAE_API_KEY": "",
        "VAE_LOG_FORMAT": "text",
        "OMP_NUM_THREADS": "1",
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_ready(url, process, READY_TIMEOUT_S, output=lambda: log.read_text()[-2000:])
        yield Server(url, get_json(url + "/model")[1]["latent_dim"])
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def server(tiny_model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The tiny model (no classify, score or conditional sampling), or $DEMO_MODEL (e.g. the
    shipped model, for screenshots with real digits)."""
    log = tmp_path_factory.mktemp("demo-server") / "server.log"
    with serving(Path(os.environ.get("DEMO_MODEL") or tiny_model_file), log) as running:
        yield running


@pytest.fixture(scope="session")
def heads_server(
    tiny_heads_model_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The tiny model with its heads: /classify, /score and /sample?digit= answer."""
    log = tmp_path_factory.mktemp("demo-heads-server") / "server.log"
    with serving(tiny_heads_model_file, log) as running:
        yield running


SHAPES = ["square", "ellipse", "heart"]  # dSprites' classes
SHIPPED_DSPRITES = Path(__file__).resolve().parents[2] / "model" / "vae_dsprites.pt"
# Mean KL per latent dimension as model/evaluate_dsprites.py writes it in the card, largest
# first: the demo's pad takes z2 and z0.
SHAPES_DIMS = [
    {"dim": 2, "kl": 3.1, "factor": "posX", "mi_share": 0.6},
    {"dim": 0, "kl": 2.4, "factor": "posY", "mi_share": 0.5},
    {"dim": 3, "kl": 0.8, "factor": "scale", "mi_share": 0.2},
    {"dim": 1, "kl": 0.01, "factor": "inactive", "mi_share": 0.0},
]


def labelled_model(path: Path, image_shape: list[int], card: dict) -> Path:
    """A tiny untrained conv VAE of `image_shape` images, 4 latent dimensions, 3 classes,
    preprocessor "resize", heads fitted on random images (~2 s), exported to `path`."""
    torch.manual_seed(0)
    arch = {"arch": "conv", "latent_dim": 4, "channels": [4, 8], "conv_hidden": 16}
    arch["image_shape"] = image_shape
    generator = torch.Generator().manual_seed(1)
    train, test = (
        Digits(torch.rand(n, *image_shape, generator=generator), torch.arange(n) % 3)
        for n in (60, 30)
    )
    cfg = HeadsConfig(
        n_components=1, em_iterations=3, head_hidden=8, classifier_epochs=1, score_k=2
    )
    model, figures = fit_heads(VAE(VAEConfig(**arch)), arch, train, test, cfg, n_classes=3)
    card = {
        **build_card(arch, {"config": {}}, {"test_nll_iwae": 1.0, "iwae_k": 1}, "0.0.1-test"),
        "image_shape": image_shape,
        "preprocessor": "resize",
        "capabilities": figures,
        **card,
    }
    return export(model, card, path)


@pytest.fixture(scope="session")
def shapes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A dSprites-like model of 1x64x64 shapes, not MNIST's: classes square, ellipse, heart;
    its card lists KL per dimension (SHAPES_DIMS)."""
    folder = tmp_path_factory.mktemp("demo-shapes")
    card = {"name": "tiny-shapes", "classes": SHAPES, "evaluation": {"dims": SHAPES_DIMS}}
    model = labelled_model(folder / "shapes.pt", [1, 64, 64], card)
    with serving(model, folder / "server.log") as running:
        yield running


@pytest.fixture(scope="session")
def dsprites_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shipped dSprites model (model/vae_dsprites.pt), served as users run it."""
    folder = tmp_path_factory.mktemp("demo-dsprites")
    with serving(SHIPPED_DSPRITES, folder / "server.log") as running:
        yield running


@pytest.fixture(scope="session")
def rgb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A model of 3x32x32 colour images with classes red, green, blue."""
    folder = tmp_path_factory.mktemp("demo-rgb")
    card = {"name": "tiny-rgb", "classes": ["red", "green", "blue"]}
    model = labelled_model(folder / "rgb.pt", [3, 32, 32], card)
    with serving(model, folder / "server.log") as running:
        yield running


@pytest.fixture(scope="module")  # its event loop must stop before other tests run asyncio
def browser():
    """Headless system Chromium via playwright."""
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if executable is None:
        unavailable("no Chromium: apt-get install chromium (or set $CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed: pip install playwright")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request) -> Iterator:
    """A fresh page (laptop viewport unless the test is parametrised with `viewport`) that
    records console errors and uncaught exceptions in `page.errors`."""
    viewport = getattr(request, "param", LAPTOP)
    mobile = viewport is PHONE
    scale = 2 if mobile else 1
    context = browser.new_context(
        viewport=viewport, is_mobile=mobile, has_touch=mobile, device_scale_factor=scale
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()
