"""Dynamic micro-batching: concurrent calls of one model method become one tensor call.

Requests queue while the inference thread is busy; when it frees, everything queued (up
to max_batch_size rows) runs as one concatenated tensor and the outputs are split back
row-exactly. With max_wait_ms > 0 the batcher also waits that long for a batch to fill.
A caller that gives up (its task cancelled: client gone, deadline passed) leaves the queue
at once; one whose batch is already running has its rows dropped.
"""

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import Tensor

Outputs = tuple[Tensor, ...]
# The tags of the batch being run (each caller's, given to submit), for `run` to read:
# tracing links the batch's span to every request in it (app.tracing).
BATCH_TAGS: ContextVar[tuple] = ContextVar("batch_tags", default=())


Finish = Callable[[Outputs], object]  # a caller's outputs -> its result, on the inference thread


@dataclass
class Pending:
    x: Tensor
    future: asyncio.Future
    tag: object = None  # the caller's, for BATCH_TAGS
    queued_at: float = field(default_factory=time.perf_counter)
    finish: Finish | None = None  # what the caller's outputs become, done in the batch's thread


class Failed:
    """A finish step's exception, carried back from the inference thread to its caller."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def unbatch(sizes: list[int], callers: list[Pending], outputs: Outputs) -> list:
    """Runs on the inference thread, after the batch's model call: each caller's rows of
    every output, through its finish step where it gave one (its error, if it raises, is
    that caller's alone). A caller gone meanwhile (its future cancelled: read across
    threads, at worst one finish step too many) is not finished."""
    parts = [output.split(sizes) for output in outputs]
    results = []
    for i, caller in enumerate(callers):
        mine, finish = tuple(part[i] for part in parts), caller.finish
        if finish is None or caller.future.cancelled():
            results.append(mine)
            continue
        try:
            results.append(finish(mine))
        except Exception as e:
            results.append(Failed(e))
    return results


class MicroBatcher:
    def __init__(
        self,
        run: Callable[..., Awaitable],
        max_batch_size: int,
        max_wait_s: float = 0.0,
        on_batch: Callable[[list[float], int], None] | None = None,
        slot: asyncio.Lock | None = None,
        unbatches: bool = False,
    ) -> None:
        # run(x): one batched call off the event loop, its outputs. With `unbatches`,
        # run(x, split) also does `split` of the outputs on that thread (app.inference): each
        # caller's part, finished, comes back to the loop in the one hand-off of the batch.
        self.run = run
        self.unbatches = unbatches
        # Held while a batch runs; shared by the batchers of one inference thread, so a batch
        # waits here, not in the thread's queue, and its callers are checked when it starts.
        self.slot = slot or asyncio.Lock()
        self.on_batch = on_batch  # (seconds each request waited, rows) as a batch starts
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.pending: deque[Pending] = deque()
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.serve_forever())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        while self.pending:
            future = self.pending.popleft().future
            if not future.done():
                future.set_exception(RuntimeError("the service is shutting down"))

    async def submit(self, x: Tensor, tag: object = None, finish: Finish | None = None) -> object:
        """The caller's rows of every output, or what `finish` makes of them (run on the
        inference thread with the rest of the batch's post-processing)."""
        future = asyncio.get_running_loop().create_future()
        pending = Pending(x, future, tag=tag, finish=finish)
        self.pending.append(pending)
        self.wakeup.set()
        try:
            return await pending.future
        except asyncio.CancelledError:  # the caller gave up (client gone, deadline passed)
            self.withdraw(pending)
            raise

    def withdraw(self, pending: Pending) -> None:
        """Take a request out of the queue before its batch runs (found by identity: its
        tensor has no usable ==). Already collected, it is skipped as its batch runs."""
        for i, queued in enumerate(self.pending):
            if queued is pending:
                del self.pending[i]
                return

    async def serve_forever(self) -> None:
        while True:
            batch = await self.collect()
            await self.run_batch(batch)

    async def wait_for_more(self, timeout: float | None) -> bool:
        """Sleep until a request arrives (True) or `timeout` seconds pass (False)."""
        self.wakeup.clear()
        try:
            await asyncio.wait_for(self.wakeup.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def collect(self) -> list[Pending]:
        """The next batch: the oldest request plus what follows, up to max_batch_size rows."""
        while not self.pending:
            await self.wait_for_more(None)
        batch = [self.pending.popleft()]
        rows = len(batch[0].x)
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while rows < self.max_batch_size:
            if not self.pending:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining > 0 and await self.wait_for_more(remaining):
                    continue
                break
            if rows + len(self.pending[0].x) > self.max_batch_size:
                break  # the next request would overflow: it opens the next batch
            batch.append(self.pending.popleft())
            rows += len(batch[-1].x)
        return batch

    async def run_batch(self, batch: list[Pending]) -> None:
        async with self.slot:
            await self.run_live(batch)

    async def run_live(self, batch: list[Pending]) -> None:
        live = [p for p in batch if not p.future.done()]  # callers that gave up are dropped
        if not live:
            return
        sizes = [len(p.x) for p in live]
        if self.on_batch is not None:
            now = time.perf_counter()
            self.on_batch([now - p.queued_at for p in live], sum(sizes))
        split = partial(unbatch, sizes, live)
        try:
            BATCH_TAGS.set(tuple(p.tag for p in live))
            x = torch.cat([p.x for p in live])
            results = await self.run(x, split) if self.unbatches else split(await self.run(x))
        except Exception as e:  # every caller of the batch gets the model's error
            for p in live:
                if not p.future.done():
                    p.future.set_exception(e)
            return
        for p, result in zip(live, results, strict=True):
            if p.future.done():
                continue
            if isinstance(result, Failed):
                p.future.set_exception(result.error)
            else:
                p.future.set_result(result)
