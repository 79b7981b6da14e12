"""Overload: far more concurrent requests than VAE_QUEUE_CAPACITY, against a slowed model.

The excess gets 503 with Retry-After at once, every accepted request completes with the
right result, and the service is ready again afterwards.
"""

import asyncio
import time

import pytest
import torch

from app.inference import ModelService
from app.main import create_app
from model import artifact
from tests.helpers import assert_error
from tests.reliability.conftest import LATENT, run_async, running

CAPACITY = 4
REQUESTS = 40
MODEL_DELAY_S = 0.2


@pytest.fixture
def slow_model(monkeypatch):
    forward = ModelService.forward

    def slow_forward(self, method, x):
        time.sleep(MODEL_DELAY_S)
        return forward(self, method, x)

    monkeypatch.setattr(ModelService, "forward", slow_forward)


@pytest.mark.parametrize("batching", [True, False])
def test_excess_requests_get_503_fast_and_accepted_ones_complete(
    slow_model, settings_for, tiny_model_file, batching
):
    app = create_app(settings_for(queue_capacity=CAPACITY, batching=batching, warmup=False))

    async def timed(client, seed):
        started = time.perf_counter()
        response = await client.get(f"/sample?n=1&seed={seed}&format=json")
        return seed, response, time.perf_counter() - started

    async def flood():
        async with running(app) as client:
            results = await asyncio.gather(*(timed(client, seed) for seed in range(REQUESTS)))
            after = [await client.get("/readyz"), await client.get("/sample?n=2")]
        return results, after

    results, after = run_async(flood())
    accepted = [(seed, r) for seed, r, _ in results if r.status_code == 200]
    refused = [(r, seconds) for _, r, seconds in results if r.status_code == 503]
    assert len(accepted) + len(refused) == REQUESTS
    assert CAPACITY <= len(accepted) < REQUESTS / 2
    slowest_accepted = max(seconds for _, r, seconds in results if r.status_code == 200)
    assert slowest_accepted >= MODEL_DELAY_S  # the model really was slow
    for response, seconds in refused:
        assert_error(response, 503, "overloaded")
        assert response.headers["retry-after"] == "1"
        assert seconds < slowest_accepted  # refused at once, not queued behind the model
    module = artifact.load(tiny_model_file)[0]
    for seed, response in accepted:
        z = torch.randn(1, LATENT, generator=torch.Generator().manual_seed(seed))
        assert response.json()["seed"] == seed
        expected = module.decode(z)[0, 0].detach().numpy()
        assert abs(torch.tensor(response.json()["pixels"][0]).numpy() - expected).max() < 1e-5
    assert [r.status_code for r in after] == [200, 200]
