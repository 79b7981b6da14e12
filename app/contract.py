"""The model's contract: everything the service knows of a model, read from its file.

The card embedded in the TorchScript file (model/export.py writes it) says the image shape,
the latent size, the likelihood, the class names and the preprocessor; the module's methods
say which capabilities it has. Both are checked against each other at load, with one small
call of encode and decode, so that a file that contradicts itself stops the server at
start-up with a one-line error naming the field, and never answers 500 later. Every
shape-dependent thing the service does (limits, warm-up, PNG colour type, /v2 tensor specs,
the class query, the demo page) is derived from here.
"""

from dataclasses import dataclass

import torch

from model.heads import CAPABILITIES, SCORE_OUTPUTS

PREPROCESSORS = ("digit", "resize")  # app.imaging: MNIST-like digit finding, or a plain resize
CHANNELS = (1, 3)  # grey or RGB


class ContractError(ValueError):
    """The model file's card is missing a field, or contradicts the module's methods."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"model card field {field!r}: {problem}")
        self.field = field


@dataclass(frozen=True)
class ModelContract:
    image_shape: tuple[int, int, int]  # C, H, W
    latent_dim: int
    likelihood: str
    classes: tuple[str, ...]  # empty when the model has no labels
    preprocessor: str
    capabilities: dict[str, str]  # capability -> the module's method that provides it
    version: str
    has_kl: bool  # the module computes KL(q(z|x) || N(0, I)) for /encode
    class_candidates: int  # draws per conditional sample (the model keeps one of each)

    @property
    def channels(self) -> int:
        return self.image_shape[0]

    @property
    def height(self) -> int:
        return self.image_shape[1]

    @property
    def width(self) -> int:
        return self.image_shape[2]

    @property
    def pixels(self) -> int:
        """Values in one image, C x H x W."""
        return self.channels * self.height * self.width

    def class_index(self, name: str | None = None, index: int | None = None) -> int | None:
        """The index of a class given by name or by index (None for neither), or a
        ValueError saying which values this model has."""
        if name is not None and index is not None:
            raise ValueError("give the class by name or by index, not both")
        if name is not None:
            if name not in self.classes:
                raise ValueError(f"unknown class {name!r}: this model has {self.class_list()}")
            return self.classes.index(name)
        if index is not None and index >= len(self.classes):
            raise ValueError(
                f"class index {index} out of range: this model has {len(self.classes)} "
                f"classes ({self.class_list()})"
            )
        return index

    def class_list(self) -> str:
        return ", ".join(self.classes) or "none"

    def summary(self) -> dict:
        """The contract as GET /model shows it."""
        return {
            "image_shape": list(self.image_shape),
            "latent_dim": self.latent_dim,
            "likelihood": self.likelihood,
            "classes": list(self.classes),
            "preprocessor": self.preprocessor,
            "capabilities": sorted(self.capabilities),
        }


def read_contract(
    module: torch.jit.ScriptModule, card: dict, device: torch.device | None = None
) -> ModelContract:
    """The contract of a loaded module (float32, on `device`) and its card, or a
    ContractError naming the field."""
    shape = image_shape(card)
    latent_dim = positive_int(card, "latent_dim")
    capabilities = {
        name: method for name, method in CAPABILITIES.items() if hasattr(module, method)
    }
    classes = class_names(
        card, "classify" in capabilities or "conditional_sampling" in capabilities
    )
    contract = ModelContract(
        image_shape=shape,
        latent_dim=latent_dim,
        likelihood=str(card.get("likelihood", "bernoulli")).lower(),
        classes=classes,
        preprocessor=preprocessor(card),
        capabilities=capabilities,
        version=str(card.get("version", "unknown")),
        has_kl=hasattr(module, "kl_divergence"),
        class_candidates=class_candidates(module, capabilities),
    )
    check_methods(module, contract, device or torch.device("cpu"))
    return contract


def image_shape(card: dict) -> tuple[int, int, int]:
    shape = card.get("image_shape")
    if not isinstance(shape, list) or len(shape) != 3 or not all(isinstance(s, int) for s in shape):
        raise ContractError("image_shape", f"expected [C, H, W], got {shape!r}")
    channels, height, width = shape
    if channels not in CHANNELS:
        raise ContractError("image_shape", f"C must be 1 (grey) or 3 (RGB), not {channels}")
    if height < 1 or width < 1:
        raise ContractError("image_shape", f"H and W must be positive, not {height}x{width}")
    return channels, height, width


def positive_int(card: dict, field: str) -> int:
    value = card.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ContractError(field, f"expected a positive integer, got {value!r}")
    return value


def class_names(card: dict, labelled: bool) -> tuple[str, ...]:
    names = card.get("classes", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ContractError("classes", f"expected a list of names, got {names!r}")
    if len(set(names)) != len(names):
        raise ContractError("classes", "names must be distinct")
    if labelled and len(names) < 2:
        raise ContractError("classes", "a model with classify or conditional sampling names 2+")
    return tuple(names)


RE_EXPORT = "re-export it with `vae-export --from-torchscript FILE`"


def class_candidates(module: torch.jit.ScriptModule, capabilities: dict[str, str]) -> int:
    """How many candidates digit_latents takes per sample; a file exported before it drew
    with rejection (one candidate, no `class_candidates`) is refused with how to update it."""
    if "conditional_sampling" not in capabilities:
        return 1
    candidates = getattr(module, "class_candidates", None)
    if not isinstance(candidates, int) or candidates < 1:
        raise ContractError(
            "capabilities", f"conditional sampling without class_candidates: {RE_EXPORT}"
        )
    return candidates


def preprocessor(card: dict) -> str:
    name = card.get("preprocessor")
    if name not in PREPROCESSORS:
        raise ContractError("preprocessor", f"expected one of {PREPROCESSORS}, got {name!r}")
    return name


def check_methods(
    module: torch.jit.ScriptModule, contract: ModelContract, device: torch.device
) -> None:
    """One image through encode and one latent through decode: their shapes must be the
    card's (a 2x784 by 3072x16 matmul error otherwise surfaces as a 500 on the first upload)."""
    x = torch.zeros(1, *contract.image_shape, device=device)
    try:
        with torch.inference_mode():
            mu, sigma = module.encode(x)
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[-1]  # TorchScript's last line names the error
        raise ContractError(
            "image_shape", f"encode fails on (1, {shape_text(contract)}): {reason}"
        ) from None
    if tuple(mu.shape) != (1, contract.latent_dim) or mu.shape != sigma.shape:
        raise ContractError(
            "latent_dim", f"encode gives mu {tuple(mu.shape)}, not (1, {contract.latent_dim})"
        )
    with torch.inference_mode():
        decoded = module.decode(torch.zeros(1, contract.latent_dim, device=device))
    if tuple(decoded.shape) != (1, *contract.image_shape):
        raise ContractError("image_shape", f"decode gives {tuple(decoded.shape)}")
    if "score" in contract.capabilities:
        with torch.inference_mode():
            outputs = module.score(x, 1)
        if len(outputs) != len(SCORE_OUTPUTS):
            raise ContractError(
                "capabilities",
                f"score gives {len(outputs)} outputs, not {len(SCORE_OUTPUTS)} "
                f"({', '.join(SCORE_OUTPUTS)}): {RE_EXPORT}",
            )
    if "classify" in contract.capabilities:
        with torch.inference_mode():
            probabilities, _ = module.classify(x)
        if probabilities.shape[1] != len(contract.classes):
            raise ContractError(
                "classes", f"{len(contract.classes)} names for {probabilities.shape[1]} classes"
            )


def shape_text(contract: ModelContract) -> str:
    return ", ".join(map(str, contract.image_shape))
