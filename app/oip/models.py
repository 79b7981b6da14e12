"""The models the protocol serves: each VAE operation a client may want as one tensor call.

- `vae-encoder`: image FP32 [-1, 1, 28, 28] in [0, 1] -> mu, sigma FP32 [-1, D], kl FP32 [-1]
- `vae-decoder`: z FP32 [-1, D] -> image FP32 [-1, 1, 28, 28] (Bernoulli means)
- `vae-reconstruct`: image -> image, decode(mu): one round trip instead of two

The image routes that need PNG work or sampling (/sample, /interpolate) stay REST-only;
score and classify are REST-only for now (docs/v2.md says why). Each infer
request is one ModelService call: N rows are one submission to the micro-batcher.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache

from torch import Tensor

from app import limits
from app.errors import APIError
from app.inference import ModelService
from app.limits import Limit
from app.oip.tensors import FLOATS, TensorSpec

PLATFORM = "pytorch_torchscript"
IMAGE = TensorSpec("image", (-1, 1, 28, 28), (*FLOATS, "UINT8"), unit_interval=True)
IMAGE_OUT = TensorSpec("image", (-1, 1, 28, 28))


@dataclass(frozen=True)
class ServedModel:
    name: str
    input: TensorSpec
    outputs: tuple[TensorSpec, ...]
    run: Callable[[ModelService, Tensor], Awaitable[tuple[Tensor, ...]]]
    rows: Limit  # the REST route's limit for the same operation

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def metadata(self, version: str) -> dict:
        return {
            "name": self.name,
            "versions": [version],
            "platform": PLATFORM,
            "inputs": [self.input.metadata()],
            "outputs": [o.metadata() for o in self.outputs],
        }


async def encode(service: ModelService, x: Tensor) -> tuple[Tensor, ...]:
    return await service.encode(x)


async def decode(service: ModelService, z: Tensor) -> tuple[Tensor, ...]:
    return (await service.decode(z),)


async def reconstruct(service: ModelService, x: Tensor) -> tuple[Tensor, ...]:
    return (await service.reconstruct(x),)


@lru_cache(maxsize=8)
def catalogue(latent_dim: int, has_kl: bool) -> dict[str, ServedModel]:
    """Every served model by name, for a module of latent size D (with or without its KL)."""
    latent = (-1, latent_dim)
    encoder_outputs = [TensorSpec("mu", latent), TensorSpec("sigma", latent)]
    if has_kl:
        encoder_outputs.append(TensorSpec("kl", (-1,)))
    z = TensorSpec("z", latent, FLOATS)
    models = [
        ServedModel("vae-encoder", IMAGE, tuple(encoder_outputs), encode, limits.IMAGES),
        ServedModel("vae-decoder", z, (IMAGE_OUT,), decode, limits.VECTORS),
        ServedModel("vae-reconstruct", IMAGE, (IMAGE_OUT,), reconstruct, limits.IMAGES),
    ]
    return {m.name: m for m in models}


def served_models(service: ModelService) -> dict[str, ServedModel]:
    return catalogue(service.latent_dim, service.has_kl)


def find_model(service: ModelService, name: str, version: str | None = None) -> ServedModel:
    """The served model `name` (at `version`, the only one: the model file's), or a 404."""
    model = served_models(service).get(name)
    if model is None:
        known = ", ".join(served_models(service))
        raise APIError(404, "model_not_found", f"no model named {name!r}: this server has {known}")
    if version is not None and version != service.version:
        raise APIError(
            404,
            "model_not_found",
            f"model {name!r} has no version {version!r}: only {service.version!r}",
        )
    return model
