"""Property tests (Hypothesis, bounded and derandomized).

Any valid image, of any size and mode, preprocesses and encodes to finite mu and sigma > 0
of the model's dimension; the MicroBatcher returns, for any interleaving and sizes of
concurrent submissions, exactly what unbatched calls return.
"""

import asyncio

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.batching import MicroBatcher
from app.errors import APIError
from app.imaging import preprocess
from model import artifact
from tests.reliability.conftest import LATENT, encoded

BOUNDED = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]
FORMATS = {  # the modes each format can store
    "PNG": {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"},
    "TIFF": {"1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"},
    "JPEG": {"L", "RGB", "CMYK"},
    "BMP": {"1", "L", "P", "RGB"},
    "GIF": {"L", "P"},
    "WEBP": {"RGB", "RGBA"},
}


@st.composite
def images(draw) -> bytes:
    width = draw(st.one_of(st.integers(1, 64), st.sampled_from([1, 2, 300, 1000])))
    height = draw(st.one_of(st.integers(1, 64), st.sampled_from([1, 2, 300, 1000])))
    mode = draw(st.sampled_from(MODES))
    fmt = draw(st.sampled_from(sorted(f for f, modes in FORMATS.items() if mode in modes)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["noise", "blank", "blob"]))
    grey = np.zeros((height, width), dtype=np.uint8)
    if kind == "noise":
        grey = rng.integers(0, 256, (height, width), dtype=np.uint8)
    elif kind == "blob":
        grey[height // 4 : 1 + height // 2, width // 4 : 1 + width // 2] = 255
    if mode == "I;16":
        image = Image.fromarray(grey.astype(np.uint16) * 257)
    else:
        image = Image.fromarray(grey).convert(mode)
    return encoded(image, fmt)


@pytest.fixture(scope="module")
def module(tiny_model_file):
    return artifact.load(tiny_model_file)[0]


@BOUNDED
@given(data=images())
def test_any_valid_image_encodes_to_a_finite_gaussian(module, data):
    """...or is refused as holding no digit (422 no_digit, docs/preprocessing.md)."""
    try:
        x = preprocess(data, 16_000_000)
    except APIError as e:
        assert (e.status, e.code) == (422, "no_digit"), e.detail
        return
    assert x.shape == (1, 28, 28) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    with torch.inference_mode():
        mu, sigma = module.encode(torch.from_numpy(x)[None])
    assert mu.shape == sigma.shape == (1, LATENT)
    assert torch.isfinite(mu).all() and torch.isfinite(sigma).all() and (sigma > 0).all()


def rowwise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A model stand-in whose every output row depends on its input row only."""
    return x * 2 + 1, x.sum(dim=1)


submissions = st.lists(
    st.tuples(st.integers(1, 6), st.floats(0, 0.003), st.booleans()), min_size=1, max_size=25
)


@settings(BOUNDED, max_examples=40)
@given(jobs=submissions, max_batch=st.integers(1, 8), wait_s=st.sampled_from([0.0, 0.001]))
def test_micro_batcher_returns_what_unbatched_calls_return(jobs, max_batch, wait_s):
    batch_sizes: list[int] = []

    async def run(x: torch.Tensor):
        batch_sizes.append(len(x))
        await asyncio.sleep(0.001)  # the inference thread is busy: later calls queue up
        return rowwise(x)

    async def scenario():
        batcher = MicroBatcher(run, max_batch, wait_s)
        batcher.start()
        generator = torch.Generator().manual_seed(len(jobs))
        inputs = [torch.randn(rows, 3, generator=generator) for rows, _, _ in jobs]

        async def submit(x, delay, cancel):
            await asyncio.sleep(delay)
            task = asyncio.ensure_future(batcher.submit(x))
            if cancel:  # a caller that gives up must not disturb the others
                task.cancel()
            return await asyncio.gather(task, return_exceptions=True)

        results = await asyncio.gather(
            *(submit(x, d, c) for x, (_, d, c) in zip(inputs, jobs, strict=True))
        )
        await batcher.stop()
        return inputs, [r[0] for r in results]

    inputs, results = asyncio.run(scenario())
    for x, (_, _, cancelled), result in zip(inputs, jobs, results, strict=True):
        if cancelled:
            assert isinstance(result, asyncio.CancelledError)
            continue
        expected = rowwise(x)
        assert len(result) == len(expected)
        for got, want in zip(result, expected, strict=True):
            assert torch.equal(got, want)
    largest = max(rows for rows, _, _ in jobs)
    assert all(size <= max(max_batch, largest) for size in batch_sizes)
    assert sum(batch_sizes) == sum(rows for rows, _, cancel in jobs if not cancel)  # each once
