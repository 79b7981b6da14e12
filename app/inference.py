"""The loaded TorchScript VAE and the one thread that runs it.

Model calls never run on the event loop: they go to a single-thread executor (so torch's
own intra-op threads are the only parallelism, set by VAE_TORCH_THREADS), under
torch.inference_mode(), optionally through a MicroBatcher per operation. Every operation
(app.operations) goes through the same `run`: no branch per method. Admission is bounded:
past VAE_QUEUE_CAPACITY waiting or running calls, requests get 503.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

from app import deadlines, metrics
from app.batching import BATCH_TAGS, Finish, MicroBatcher, Outputs
from app.contract import ContractError, ModelContract, read_contract
from app.errors import overloaded
from app.operations import Operation, operations_for
from app.settings import Settings
from app.tracing import ModelCall, model_call, record_model_call
from model import artifact

log = logging.getLogger("app.inference")

# The methods the service calls (model/export.py REQUIRED_METHODS lists what a file offers;
# `kl_divergence` is optional: without it /encode answers kl = null).
SERVED_METHODS = ("encode", "decode", "reconstruct")


class ModelLoadError(RuntimeError):
    """The model cannot be served; the message says why in one line."""


def load_module(
    path: Path, device: torch.device
) -> tuple[torch.jit.ScriptModule, dict, ModelContract]:
    """The TorchScript module, its embedded card and the contract read from both, or a
    ModelLoadError saying in one line what is wrong."""
    try:
        module, card = artifact.load(path, device, SERVED_METHODS)
        return module, card, read_contract(module, card, device)
    except artifact.ArtifactError as e:
        hint = " (set VAE_MODEL_PATH)" if not path.is_file() else ""
        raise ModelLoadError(f"{e}{hint}") from None
    except ContractError as e:
        raise ModelLoadError(f"{path}: {e}") from None


class ModelService:
    def __init__(
        self,
        module: torch.jit.ScriptModule,
        card: dict,
        contract: ModelContract,
        device: torch.device,
        settings: Settings,
    ):
        self.card, self.contract, self.device, self.settings = card, contract, device, settings
        self.dtype = getattr(torch, settings.precision)  # VAE_PRECISION: weights and inputs
        self.module = module.to(self.dtype)
        self.latent_dim = contract.latent_dim
        self.version = contract.version
        self.has_kl = contract.has_kl
        # the optional heads (model/heads.py) the file has; without one, its routes answer 501
        self.capabilities = list(contract.capabilities)
        self.operations = operations_for(contract)
        self.served: dict | None = None  # the /v2 models (app.oip.models.served_models)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.outstanding = 0
        self.warming = False  # warm-up calls are not counted as images encoded or decoded
        self.batchers: dict[tuple, MicroBatcher] = {}
        self.slot = asyncio.Lock()  # the inference thread, as the batchers share it
        self.children: dict[str, tuple] = {}  # operation -> its metrics (self.series)

    def batcher(self, op: Operation, args: tuple) -> MicroBatcher | None:
        """The batcher of `op` called with `args` (calls with other arguments, e.g. another
        k of score, cannot share a tensor call), created on first use; None when batching
        is off or `op` is not batched. Score's batchers are bounded to
        VAE_MAX_SCORE_SAMPLES decoder rows (images x k) per call, so at most
        VAE_MAX_SCORE_K of them exist."""
        if not (self.settings.batching and op.batched):
            return None
        key = (op.name, *args)
        if key not in self.batchers:
            rows = self.settings.max_batch_size
            if op.name == "score":
                rows = max(1, self.settings.max_score_samples // args[0])
            wait_s = self.settings.max_wait_ms / 1000
            run = lambda x, split: self.traced(op, self.run_in_thread(op, x, *args, post=split))  # noqa: E731
            observer = batch_observer(op.name, rows)
            self.batchers[key] = MicroBatcher(
                run, rows, wait_s, observer, self.slot, unbatches=True
            )
            self.batchers[key].start()
        return self.batchers[key]

    @classmethod
    def load(cls, settings: Settings) -> "ModelService":
        torch.set_num_threads(settings.torch_threads)
        try:
            device = artifact.resolve_device(settings.device)
        except ValueError as e:
            raise ModelLoadError(f"VAE_DEVICE {e}") from None
        module, card, contract = load_module(Path(settings.model_path), device)
        return cls(module, card, contract, device, settings)

    def start(self) -> None:
        for op in self.operations.values():  # created now, so none is made mid-request
            if op.name != "score":
                self.batcher(op, ())
        labels = (self.version, str(self.device), str(self.latent_dim), self.settings.precision)
        metrics.MODEL_INFO.labels(*labels).set(1)

    async def close(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()
        self.executor.shutdown(wait=True)

    def forward(self, op: Operation, x: Tensor, *args: object) -> Outputs:
        """Runs on the inference thread: one call of the module, outputs back on the CPU.
        `x` and the floating-point tensors in `args` are cast to the model's device and
        precision; other tensors (class indices) go to the device."""
        started = time.perf_counter()
        with torch.inference_mode():
            x = x.to(self.device, self.dtype, non_blocking=True)
            args = tuple(self.on_device(a) if isinstance(a, Tensor) else a for a in args)
            outputs = tuple(o.float().cpu() for o in op.call(self.module, x, *args))
        duration, batch_size = self.series(op.name)
        duration.observe(time.perf_counter() - started)
        batch_size.observe(len(x))
        if not self.warming:  # counted as they run: work dropped for gone clients is not
            count(op, len(x), args)
        return outputs

    def series(self, name: str) -> tuple:
        """Operation `name`'s inference-duration and batch-size histograms, looked up once
        (labels() costs ~2 us a call)."""
        series = self.children.get(name)
        if series is None:
            series = metrics.INFERENCE_DURATION.labels(name), metrics.BATCH_SIZE.labels(name)
            self.children[name] = series
        return series

    def on_device(self, t: Tensor) -> Tensor:
        return t.to(self.device, self.dtype) if t.is_floating_point() else t.to(self.device)

    async def run_in_thread(
        self, op: Operation, x: Tensor, *args: object, post: Finish | None = None
    ) -> object:
        """forward(), then `post` of its outputs where given, in one call of the thread."""
        loop = asyncio.get_running_loop()
        if post is None:
            return await loop.run_in_executor(self.executor, self.forward, op, x, *args)
        return await loop.run_in_executor(self.executor, lambda: post(self.forward(op, x, *args)))

    async def run_alone(
        self, op: Operation, x: Tensor, *args: object, finish: Finish | None = None
    ) -> object:
        """An unbatched call; its time in queue is its wait for the inference thread."""
        queued_at = time.perf_counter()

        def started() -> object:
            metrics.QUEUE_DURATION.labels(op.name).observe(time.perf_counter() - queued_at)
            outputs = self.forward(op, x, *args)
            return outputs if finish is None else finish(outputs)

        return await asyncio.get_running_loop().run_in_executor(self.executor, started)

    async def traced(self, op: Operation, call: Awaitable[Outputs], calls: tuple = ()) -> Outputs:
        """`call` (one model call, for the requests of `calls`, else of the batch being run:
        BATCH_TAGS), with its spans where any of them is traced (app.tracing)."""
        calls = [c for c in calls or BATCH_TAGS.get() if isinstance(c, ModelCall)]
        if not calls:
            return await call
        started, error = time.time_ns(), None
        try:
            return await call
        except BaseException as e:
            error = e
            raise
        finally:
            record_model_call(calls, op.name, self.version, started, time.time_ns(), error)

    async def run(
        self, name: str, x: Tensor, *args: object, finish: Finish | None = None
    ) -> object:
        """Operation `name` on the rows of `x` for one request, batched with others when
        batching is on; its outputs, each with the rows of `x`, or `finish(outputs)` where
        `finish` is given, run on the inference thread after the model call (post-processing
        done there, batch by batch, not on the event loop). Admission first: past
        VAE_QUEUE_CAPACITY outstanding calls, a 503. Past the request's deadline
        (app.deadlines), a 504 without model work; if it passes while the call waits or
        runs, a 504 at the deadline, the call withdrawn from the queue."""
        op = self.operations[name]
        deadline = deadlines.DEADLINE.get()
        deadlines.check(deadline)
        if self.outstanding >= self.settings.queue_capacity:
            raise overloaded(f"{self.outstanding} model calls are queued; retry shortly")
        traced = model_call(self.version, len(x))  # None unless traced
        self.outstanding += 1
        metrics.QUEUE_DEPTH.inc()
        try:
            batcher = self.batcher(op, args)
            if batcher:
                call = batcher.submit(x, traced, finish)
            else:
                call = self.run_alone(op, x, *args, finish=finish)
            if not batcher and traced is not None:
                call = self.traced(op, call, (traced,))
            return await (call if deadline is None else deadlines.within(call, deadline))
        finally:
            self.outstanding -= 1
            metrics.QUEUE_DEPTH.dec()
            if traced is not None:  # post-processing starts (or is done: a finish step)
                traced.request.model_done_ns = time.time_ns()

    async def warm_up(self) -> None:
        """Run every operation once (first calls are slow: TorchScript profiles them)."""
        x = torch.rand(2, *self.contract.image_shape)
        z = torch.randn(2, self.latent_dim)
        arguments = {
            "decode": (z,),
            "score": (x, 2),
            "class_latents": (
                torch.randn(2, self.contract.class_candidates, self.latent_dim),
                torch.tensor([0, len(self.contract.classes) - 1]),
                torch.rand(2, self.contract.class_candidates),
                1.0,
            ),
        }
        self.warming = True
        try:
            for _ in range(2):
                for op in self.operations.values():
                    await self.run_in_thread(op, *arguments.get(op.name, (x,)))
        finally:
            self.warming = False


def batch_observer(name: str, max_rows: int):
    """What a batcher of operation `name` reports as each batch starts: every request's
    time in queue, and the batch's fill (rows / max_rows)."""
    queue_duration = metrics.QUEUE_DURATION.labels(name)
    fill = metrics.BATCH_FILL.labels(name)

    def observe(waits: list[float], rows: int) -> None:
        for seconds in waits:
            queue_duration.observe(seconds)
        fill.observe(rows / max_rows)

    return observe


def count(op: Operation, rows: int, args: tuple) -> None:
    """The images an operation's call encodes and decodes (score decodes k per image),
    counted by the inference thread as the call runs."""
    if op.encodes:
        metrics.IMAGES_ENCODED.inc(rows)
    if op.decodes:
        metrics.IMAGES_DECODED.inc(rows * (args[0] if args else 1))
