"""AsyncVAEClient: the real app over httpx.ASGITransport (lifespan run by hand), and retries."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.main import create_app
from app.settings import Settings
from vae_client import AsyncVAEClient, VAEServiceError
from vae_client import api as client_api

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def avae(tiny_model_file: Path) -> AsyncIterator[AsyncVAEClient]:
    app = create_app(Settings(model_path=tiny_model_file, api_key=None))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://asgi") as http:
            yield AsyncVAEClient(http=http, retries=0)


async def test_async_methods(avae: AsyncVAEClient, digit: np.ndarray) -> None:
    assert await avae.ready() is True
    info = await avae.model_info()
    samples = await avae.sample(3, seed=5)
    assert samples.pixels.shape == (3, 28, 28) and samples.z.shape == (3, info.latent_dim)
    encoding = await avae.encode(digit)
    assert encoding.mu.shape == (info.latent_dim,)
    assert [len(e.mu) for e in await avae.encode([digit, digit])] == [info.latent_dim] * 2
    decoded = await avae.decode(encoding.mu)
    reconstruction = await avae.reconstruct(digit)
    np.testing.assert_allclose(reconstruction.pixels, decoded.pixels, atol=1e-5)
    strip = await avae.interpolate(samples.z[0], samples.z[1], steps=4)
    np.testing.assert_allclose(strip.z[[0, -1]], samples.z[:2], atol=1e-6)


async def test_async_errors_are_mapped(avae: AsyncVAEClient) -> None:
    with pytest.raises(VAEServiceError) as caught:
        await avae.decode([[0.0]])
    assert (caught.value.status, caught.value.code) == (422, "invalid_parameters")


async def test_async_retry_honours_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(client_api.asyncio, "sleep", sleep)
    model = {"version": "1", "latent_dim": 2, "device": "cpu", "batching": True, "card": {}}
    answers = iter(
        [
            httpx.Response(
                503, json={"error": "not_ready", "detail": "loading"}, headers={"Retry-After": "3"}
            ),
            httpx.Response(200, json=model),
        ]
    )
    transport = httpx.MockTransport(lambda request: next(answers))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        info = await AsyncVAEClient(http=http, retries=2).model_info()
    assert info.latent_dim == 2 and waited == [3.0]
