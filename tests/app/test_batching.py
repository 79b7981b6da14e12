"""The micro-batcher: batches form under concurrency and results split back exactly."""

import asyncio
import threading

import pytest
import torch

from app.batching import MicroBatcher


class Recorder:
    """A fake model call that records batch sizes and returns (2x, row sums)."""

    def __init__(self, delay: float = 0.01) -> None:
        self.batches: list[int] = []
        self.delay = delay

    async def __call__(self, x: torch.Tensor):
        self.batches.append(len(x))
        await asyncio.sleep(self.delay)
        return x * 2, x.sum(dim=1)


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_batched_and_split_exactly():
    async def scenario():
        recorder = Recorder()
        batcher = MicroBatcher(recorder, max_batch_size=64)
        batcher.start()
        inputs = [torch.randn(n, 3) for n in (1, 2, 3, 1, 5, 2, 1, 4)]
        results = await asyncio.gather(*(batcher.submit(x) for x in inputs))
        await batcher.stop()
        return recorder, inputs, results

    recorder, inputs, results = run(scenario())
    assert len(recorder.batches) < len(inputs)  # at least some requests shared a call
    assert sum(recorder.batches) == sum(len(x) for x in inputs)
    for x, (doubled, sums) in zip(inputs, results, strict=True):
        torch.testing.assert_close(doubled, x * 2)
        torch.testing.assert_close(sums, x.sum(dim=1))


def test_batches_respect_max_batch_size():
    async def scenario():
        recorder = Recorder()
        batcher = MicroBatcher(recorder, max_batch_size=4)
        batcher.start()
        await asyncio.gather(*(batcher.submit(torch.randn(1, 2)) for _ in range(10)))
        await asyncio.gather(batcher.submit(torch.randn(9, 2)))  # alone, never split
        await batcher.stop()
        return recorder

    recorder = run(scenario())
    assert max(recorder.batches[:-1]) <= 4 and recorder.batches[-1] == 9


def test_max_wait_gathers_staggered_requests():
    """A window far longer than the stagger (a stalled runner cannot outlast it); the batch
    goes as soon as it is full, so the test does not wait for the window's end."""

    async def scenario():
        recorder = Recorder(delay=0)
        batcher = MicroBatcher(recorder, max_batch_size=3, max_wait_s=60)
        batcher.start()

        async def later(delay):
            await asyncio.sleep(delay)
            return await batcher.submit(torch.randn(1, 2))

        await asyncio.wait_for(asyncio.gather(later(0), later(0.02), later(0.04)), 30)
        await batcher.stop()
        return recorder

    assert run(scenario()).batches == [3]


def test_max_wait_ends_and_a_lone_request_runs_alone():
    async def scenario():
        recorder = Recorder(delay=0)
        batcher = MicroBatcher(recorder, max_batch_size=64, max_wait_s=0.05)
        batcher.start()
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(batcher.submit(torch.randn(1, 2)), 30)
        waited = asyncio.get_running_loop().time() - started
        await batcher.stop()
        return recorder, waited

    recorder, waited = run(scenario())
    assert recorder.batches == [1] and waited >= 0.05  # it waited the window, then ran


def test_model_error_reaches_every_caller_and_batcher_survives():
    async def scenario():
        calls = {"n": 0}

        async def failing_once(x):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("boom")
            return (x,)

        batcher = MicroBatcher(failing_once, max_batch_size=8)
        batcher.start()
        first = await asyncio.gather(
            *(batcher.submit(torch.ones(1, 1)) for _ in range(3)), return_exceptions=True
        )
        second = await batcher.submit(torch.ones(1, 1))
        await batcher.stop()
        return first, second

    first, second = run(scenario())
    assert all(isinstance(r, RuntimeError) for r in first)
    assert second[0].item() == 1.0


def test_cancelled_caller_is_skipped():
    async def scenario():
        recorder = Recorder(delay=0.05)
        batcher = MicroBatcher(recorder, max_batch_size=8)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(torch.ones(2, 1)))
        await asyncio.sleep(0)
        gone = asyncio.ensure_future(batcher.submit(torch.ones(3, 1)))
        await asyncio.sleep(0)
        gone.cancel()
        await first
        await batcher.stop()
        return recorder

    assert run(scenario()).batches == [2]


@pytest.mark.parametrize("batching", [True, False])
def test_service_batched_results_equal_unbatched(make_client, batching):
    """Concurrent decodes through the real app equal one-at-a-time decodes of the same z."""
    client = make_client(batching=batching)
    model = client.app.state.model
    zs = [torch.randn(n, model.latent_dim) for n in (1, 3, 2, 5)]

    async def concurrent():
        return await asyncio.gather(*(model.run("decode", z) for z in zs))

    reference = [model.forward(model.operations["decode"], z)[0] for z in zs]
    results = client.portal.call(concurrent)
    for (got,), want in zip(results, reference, strict=True):
        torch.testing.assert_close(got, want)


def test_finish_steps_run_on_the_batchs_thread_with_errors_kept_apart():
    """With `unbatches`, the runner does the split and each caller's finish step on its own
    thread (app.inference: the inference thread), and one step's error is its caller's."""
    threads: set[str] = set()

    async def in_a_thread(x: torch.Tensor, split):
        def call():
            return split((x * 2,))

        return await asyncio.to_thread(call)

    def finish(outputs):
        threads.add(threading.current_thread().name)
        return outputs[0].sum().item()

    def failing(outputs):
        raise ValueError("this caller's own")

    async def scenario():
        batcher = MicroBatcher(in_a_thread, max_batch_size=64, unbatches=True)
        batcher.start()
        x = torch.ones(2, 3)
        results = await asyncio.gather(
            batcher.submit(x, finish=finish),
            batcher.submit(x, finish=failing),
            batcher.submit(x),
            return_exceptions=True,
        )
        await batcher.stop()
        return results

    summed, error, plain = run(scenario())
    assert summed == 12.0
    assert isinstance(error, ValueError) and str(error) == "this caller's own"
    torch.testing.assert_close(plain[0], torch.full((2, 3), 2.0))
    assert threads and threading.main_thread().name not in threads
