"""Service fixtures: the app on the tiny model, in-process, with its lifespan running."""

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings


def png_bytes(array: np.ndarray, mode: str = "L") -> bytes:
    """uint8 array -> PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8), mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def digit_png() -> bytes:
    """A 28x28 white-on-black stroke, like an MNIST '1'."""
    array = np.zeros((28, 28), dtype=np.uint8)
    array[4:24, 13:16] = 255
    return png_bytes(array)


@pytest.fixture
def make_client(tiny_model_file: Path) -> Iterator[Callable[..., TestClient]]:
    """Build a started client with settings overrides; all are closed at teardown."""
    clients: list[TestClient] = []

    def make(**overrides) -> TestClient:
        settings = Settings(model_path=tiny_model_file, log_format="text", **overrides)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()
