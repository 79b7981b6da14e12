"""The models the protocol serves: each VAE operation a client may want as one tensor call.

- `vae-encoder`: image FP32 [-1, C, H, W] in [0, 1] -> mu, sigma FP32 [-1, D], kl FP32 [-1]
- `vae-decoder`: z FP32 [-1, D] -> image FP32 [-1, C, H, W] (Bernoulli means)
- `vae-reconstruct`: image -> image, decode(mu): one round trip instead of two
- `vae-score`: image -> elbo, reconstruction, kl, log_likelihood, bits_per_dim, percentile,
  ood_score, ood_percentile, typical (1/0), each FP32 [-1]; request parameter `k`
  (importance samples, default 100)
- `vae-classify`: image -> probabilities FP32 [-1, classes], mu FP32 [-1, D]

C, H, W, D and the classes are the model's (app.contract).

The last two exist only when the model file has the capability (GET /model), as /score and
/classify answer 501 without it. /sample and /interpolate stay REST-only: both are the
decoder on a z the client can make. Each infer request is one ModelService call: N rows are
one submission to the micro-batcher.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from torch import Tensor

from app import limits
from app.contract import ModelContract
from app.errors import APIError
from app.inference import ModelService
from app.limits import Limit
from app.oip.schemas import Parameters
from app.oip.tensors import FLOATS, TensorSpec, bad_tensor
from app.operations import Operation, Outputs, operations_for

PLATFORM = "pytorch_torchscript"
DEFAULT_SCORE_K = 100  # as /score
Run = Callable[[ModelService, Tensor, Parameters], Awaitable[Outputs]]


@dataclass(frozen=True)
class ServedModel:
    name: str
    input: TensorSpec
    outputs: tuple[TensorSpec, ...]
    run: Run  # the model call, with the request's parameters
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


def no_arguments(service: ModelService, rows: int, parameters: Parameters) -> tuple:
    return ()


def score_arguments(service: ModelService, rows: int, parameters: Parameters) -> tuple:
    """The request parameter `k` (importance samples) is /score's query k, under the same
    two limits."""
    k = parameters.get("k", DEFAULT_SCORE_K)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise bad_tensor("parameter k (importance samples) must be a positive integer")
    limits.SCORE_K.check(k, service.settings)
    shown = f"{rows} x {k} = {rows * k}"
    limits.SCORE_SAMPLES.enforce(rows * k, service.settings.max_score_samples, shown)
    return (k,)


ARGUMENTS = {"score": score_arguments}  # the operations that take request parameters


def served_model(op: Operation) -> ServedModel:
    """The protocol's model for one operation: its tensors, and the call with the request's
    parameters as the operation's arguments."""
    input_name, input_shape = op.input
    image = input_name == "image"
    spec = TensorSpec(input_name, input_shape, (*FLOATS, "UINT8") if image else FLOATS, image)
    arguments = ARGUMENTS.get(op.name, no_arguments)

    async def run(service: ModelService, x: Tensor, parameters: Parameters) -> Outputs:
        return await service.run(op.name, x, *arguments(service, len(x), parameters))

    outputs = tuple(TensorSpec(name, shape) for name, shape in op.outputs)
    return ServedModel(op.v2_name, spec, outputs, run, op.rows)


def catalogue(contract: ModelContract) -> dict[str, ServedModel]:
    """Every served model by name, for a model of this contract: one per operation that
    has a protocol name (app.operations)."""
    operations = operations_for(contract).values()
    return {op.v2_name: served_model(op) for op in operations if op.v2_name}


def served_models(service: ModelService) -> dict[str, ServedModel]:
    """The catalogue of the service's model, made once."""
    if service.served is None:
        service.served = catalogue(service.contract)
    return service.served


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
