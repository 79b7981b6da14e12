"""Fixtures: the real app in-process (TestClient runs its lifespan), a client bound to it, and
a digit-like test image."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from vae_client import VAEClient


@pytest.fixture(scope="module")
def app_client(tiny_model_file: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_path=tiny_model_file, api_key=None))) as client:
        yield client


@pytest.fixture
def vae(app_client: TestClient) -> VAEClient:
    return VAEClient(http=app_client, retries=0)


@pytest.fixture
def digit() -> np.ndarray:
    """A 28x28 uint8 'digit': a white bar on black (used by the service as it is)."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[6:22, 12:16] = 255
    return pixels


@pytest.fixture
def other_digit() -> np.ndarray:
    """A different 28x28 uint8 'digit': a white ring on black."""
    ys, xs = np.indices((28, 28))
    radius = np.hypot(ys - 13.5, xs - 13.5)
    return np.where((radius > 5) & (radius < 8), 255, 0).astype(np.uint8)
