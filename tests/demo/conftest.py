"""Fixtures: a real vae-serve process on a free port (tiny model) and headless Chromium.

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

from tests.helpers import free_port, unavailable, wait_ready

READY_TIMEOUT_S = 60


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
