"""The model's operations, each defined once: the module call it makes, its input and
outputs (names and shapes, from the contract), the capability it needs, the request limit
on its rows and what it counts.

The runner (app.inference.ModelService.run) takes any of them the same way; the REST
routes (app.routers) and the Open Inference Protocol models (app.oip.models) are codecs
over them: they turn a request into the input tensor and the outputs into a response.
"""

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from app import limits
from app.contract import ModelContract
from model.heads import SCORE_OUTPUTS  # the REST fields of /score, v2 vae-score outputs

Outputs = tuple[Tensor, ...]
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Operation:
    name: str
    call: Callable[..., Outputs]  # (module, x, *args) -> outputs, on the inference thread
    input: tuple[str, Shape]  # name and shape of x (rows first, -1)
    outputs: tuple[tuple[str, Shape], ...]
    rows: limits.Limit  # the request limit on the rows of x
    capability: str | None = None  # None: every model has it (app.contract capabilities)
    batched: bool = True  # concurrent calls are merged by a MicroBatcher
    encodes: bool = False  # each row is an image encoded (metrics)
    decodes: bool = False  # each row decodes an image; k images with `score`'s k argument
    v2_name: str | None = None  # the Open Inference Protocol model that serves it, if any

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.outputs)


def encode_with_kl(module, x: Tensor) -> Outputs:
    mu, sigma = module.encode(x)
    return mu, sigma, module.kl_divergence(mu, sigma)


def encode_only(module, x: Tensor) -> Outputs:
    return tuple(module.encode(x))


def decode(module, z: Tensor) -> Outputs:
    return (module.decode(z),)


def reconstruct(module, x: Tensor) -> Outputs:
    return (module.reconstruct(x),)


def score(module, x: Tensor, k: int) -> Outputs:
    return tuple(module.score(x, k))


def classify(module, x: Tensor) -> Outputs:
    return tuple(module.classify(x))


def class_latents(module, eps: Tensor, classes: Tensor, u: Tensor, temperature: float) -> Outputs:
    """z (N, D) from the per-class latent densities: eps ~ N(0, I) (N, R, D) and
    u ~ U(0, 1) (N, R) for R candidates each (ModelContract.class_candidates; the model
    keeps one by its classifier), class indices (N,)."""
    return (module.digit_latents(classes, eps, u, temperature),)


def operations_for(contract: ModelContract) -> dict[str, Operation]:
    """Every operation a model of this contract offers, by name."""
    image = ("image", (-1, *contract.image_shape))
    latent = (-1, contract.latent_dim)
    encoded = (("mu", latent), ("sigma", latent)) + ((("kl", (-1,)),) if contract.has_kl else ())
    operations = [
        Operation(
            "encode",
            encode_with_kl if contract.has_kl else encode_only,
            image,
            encoded,
            limits.IMAGES,
            encodes=True,
            v2_name="vae-encoder",
        ),
        Operation(
            "decode",
            decode,
            ("z", latent),
            (image,),
            limits.VECTORS,
            decodes=True,
            v2_name="vae-decoder",
        ),
        Operation(
            "reconstruct",
            reconstruct,
            image,
            (image,),
            limits.IMAGES,
            encodes=True,
            decodes=True,
            v2_name="vae-reconstruct",
        ),
        Operation(
            "score",
            score,
            image,
            tuple((name, (-1,)) for name in SCORE_OUTPUTS),
            limits.IMAGES,
            capability="score",
            encodes=True,
            decodes=True,
            v2_name="vae-score",
        ),
        Operation(
            "classify",
            classify,
            image,
            (("probabilities", (-1, len(contract.classes))), ("mu", latent)),
            limits.IMAGES,
            capability="classify",
            encodes=True,
            v2_name="vae-classify",
        ),
        Operation(
            "class_latents",
            class_latents,
            ("eps", (-1, contract.class_candidates, contract.latent_dim)),
            (("z", latent),),
            limits.VECTORS,
            capability="conditional_sampling",
            batched=False,
        ),
    ]
    return {
        op.name: op
        for op in operations
        if op.capability is None or op.capability in contract.capabilities
    }
