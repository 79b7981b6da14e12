"""The loaded TorchScript VAE and the one thread that runs it.

Model calls never run on the event loop: they go to a single-thread executor (so torch's
own intra-op threads are the only parallelism, set by VAE_TORCH_THREADS), under
torch.inference_mode(), optionally through a MicroBatcher per method. Admission is
bounded: past VAE_QUEUE_CAPACITY waiting or running calls, requests get 503.
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

from app import metrics
from app.batching import MicroBatcher, Outputs
from app.contract import ContractError, ModelContract, read_contract
from app.errors import overloaded
from app.settings import Settings
from model import artifact

log = logging.getLogger("app.inference")

# The methods the service calls (model/export.py REQUIRED_METHODS lists what a file offers;
# `kl_divergence` is optional: without it /encode answers kl = null).
SERVED_METHODS = ("encode", "decode", "reconstruct")
BATCHED_METHODS = ("encode", "decode", "reconstruct", "classify")
# What the exported `score` method returns, in order (model/heads.py), each (N,): the REST
# fields of /score and the outputs of the v2 model vae-score.
SCORE_OUTPUTS = (
    "elbo",
    "reconstruction",
    "kl",
    "log_likelihood",
    "bits_per_dim",
    "percentile",
    "typical",
)


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
        self.served: dict | None = None  # the /v2 models (app.oip.models.served_models)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.outstanding = 0
        self.batchers: dict[str, MicroBatcher] = {}
        if settings.batching:
            for method in BATCHED_METHODS:
                if hasattr(module, method):
                    self.batchers[method] = self.new_batcher(method, settings.max_batch_size)

    def new_batcher(self, method: str, max_rows: int, *args: object) -> MicroBatcher:
        wait_s = self.settings.max_wait_ms / 1000
        return MicroBatcher(lambda x: self.run_in_thread(method, x, *args), max_rows, wait_s)

    def score_batcher(self, k: int) -> MicroBatcher:
        """One batcher per k (calls with different k cannot share a tensor call), each
        bounded to VAE_MAX_SCORE_SAMPLES decoder rows (images x k) per call; created on
        first use, so at most VAE_MAX_SCORE_K of them."""
        key = f"score:{k}"
        if key not in self.batchers:
            rows = max(1, self.settings.max_score_samples // k)
            self.batchers[key] = self.new_batcher("score", rows, k)
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
        for batcher in self.batchers.values():
            batcher.start()
        labels = (self.version, str(self.device), str(self.latent_dim), self.settings.precision)
        metrics.MODEL_INFO.labels(*labels).set(1)

    async def close(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()
        self.executor.shutdown(wait=True)

    def forward(self, method: str, x: Tensor, *args: object) -> Outputs:
        """Runs on the inference thread: one call of the module, outputs back on the CPU.
        `x` is cast to the model's device and precision; tensors in `args` go to the device."""
        started = time.perf_counter()
        with torch.inference_mode():
            x = x.to(self.device, self.dtype, non_blocking=True)
            args = tuple(a.to(self.device) if isinstance(a, Tensor) else a for a in args)
            if method == "encode":
                mu, sigma = self.module.encode(x)
                outputs = (
                    (mu, sigma, self.module.kl_divergence(mu, sigma))
                    if self.has_kl
                    else (mu, sigma)
                )
            elif method == "digit_latents":  # x is eps; args: digits, u, temperature
                digits, u, temperature = args
                outputs = (self.module.digit_latents(digits, x, u.to(self.dtype), temperature),)
            else:
                outputs = getattr(self.module, method)(x, *args)
                outputs = outputs if isinstance(outputs, tuple) else (outputs,)
            outputs = tuple(o.float().cpu() for o in outputs)
        metrics.INFERENCE_DURATION.labels(method).observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.labels(method).observe(len(x))
        return outputs

    async def run_in_thread(self, method: str, x: Tensor, *args: object) -> Outputs:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.forward, method, x, *args)

    async def call(
        self, method: str, x: Tensor, *args: object, batcher: MicroBatcher | None = None
    ) -> Outputs:
        """One model call for one request, batched with others when batching is on."""
        if self.outstanding >= self.settings.queue_capacity:
            raise overloaded(f"{self.outstanding} model calls are queued; retry shortly")
        self.outstanding += 1
        metrics.QUEUE_DEPTH.inc()
        try:
            batcher = batcher or self.batchers.get(method)
            return await (batcher.submit(x) if batcher else self.run_in_thread(method, x, *args))
        finally:
            self.outstanding -= 1
            metrics.QUEUE_DEPTH.dec()

    async def encode(self, x: Tensor) -> Outputs:
        """(N, C, H, W) -> mu (N, D), sigma (N, D)[, KL (N,)]."""
        metrics.IMAGES_ENCODED.inc(len(x))
        return await self.call("encode", x)

    async def decode(self, z: Tensor) -> Tensor:
        metrics.IMAGES_DECODED.inc(len(z))
        return (await self.call("decode", z))[0]

    async def reconstruct(self, x: Tensor) -> Tensor:
        metrics.IMAGES_ENCODED.inc(len(x))
        metrics.IMAGES_DECODED.inc(len(x))
        return (await self.call("reconstruct", x))[0]

    async def score(self, x: Tensor, k: int) -> Outputs:
        """(N, C, H, W) -> elbo, reconstruction, kl, log_likelihood, bits_per_dim,
        percentile, typical (1.0/0.0), each (N,); the k samples decoded as one batch."""
        metrics.IMAGES_ENCODED.inc(len(x))
        metrics.IMAGES_DECODED.inc(len(x) * k)
        batcher = self.score_batcher(k) if self.settings.batching else None
        return await self.call("score", x, k, batcher=batcher)

    async def classify(self, x: Tensor) -> Outputs:
        """(N, C, H, W) -> class probabilities (N, classes), mu (N, D)."""
        metrics.IMAGES_ENCODED.inc(len(x))
        return await self.call("classify", x)

    async def digit_latents(
        self, digits: Tensor, eps: Tensor, u: Tensor, temperature: float
    ) -> Tensor:
        """z (N, D) from the per-class latent densities (one small call, not batched)."""
        return (await self.call("digit_latents", eps, digits, u, temperature, batcher=None))[0]

    async def warm_up(self) -> None:
        """Run every served method once (first calls are slow: TorchScript profiles them)."""
        x = torch.rand(2, *self.contract.image_shape)
        z = torch.randn(2, self.latent_dim)
        for _ in range(2):
            await self.run_in_thread("encode", x)
            await self.run_in_thread("decode", z)
            await self.run_in_thread("reconstruct", x)
            if "score" in self.capabilities:
                await self.run_in_thread("score", x, 2)
            if "classify" in self.capabilities:
                await self.run_in_thread("classify", x)
            if "conditional_sampling" in self.capabilities:
                digits = torch.tensor([0, len(self.contract.classes) - 1])
                await self.run_in_thread("digit_latents", z, digits, torch.rand(2), 1.0)
