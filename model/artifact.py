"""The model artifact: one TorchScript file that carries its card, and the one way to read it.

Everything that reads the file calls `load` (the service, evaluation, the benchmarks, the
tests); export writes it with `script` and `save`. These are the only torch.jit calls.
`resolve_device` turns a device setting (`auto|cpu|cuda|cuda:N`) into the device to load on,
for the service and for training.

TorchScript is still the contract: one file holds the weights and every method the service
calls (encode, decode, reconstruct, ...), embeds the card as an extra file, and loads
without the project's Python classes. torch 2.13 deprecates torch.jit in favour of
torch.export, which writes one program per function and has no place for the card yet, so
the deprecation warnings are silenced here, around these calls, and nowhere else.
"""

import json
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

CARD_NAME = "model_card.json"


class ArtifactError(RuntimeError):
    """The file cannot be used as a model; the message says why in one line."""


@contextmanager
def torchscript() -> Iterator[None]:
    """torch.jit without its deprecation warnings (see the module docstring for why)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", DeprecationWarning)
        yield


def resolve_device(name: str) -> torch.device:
    """`auto` (CUDA when present), `cpu`, `cuda` or `cuda:N` as a device of this machine; for
    anything else a ValueError whose message starts with the name and says why."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"{name!r} is not a device (auto|cpu|cuda|cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name!r}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name!r}: this machine has {torch.cuda.device_count()} GPUs")
    elif device.type != "cpu":
        raise ValueError(f"{name!r} is not supported (auto|cpu|cuda|cuda:N)")
    return device


def load(
    path: str | Path, device: str | torch.device = "cpu", required: Iterable[str] = ()
) -> tuple[torch.jit.ScriptModule, dict]:
    """The module in eval mode on `device` and its embedded card ({} when it has none)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"model file {path} does not exist")
    extra = {CARD_NAME: ""}
    try:
        with torchscript():
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as e:  # torch raises RuntimeError, ValueError, zipfile errors...
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ArtifactError(
            f"model file {path} is not a TorchScript archive: {first_line}"
        ) from None
    missing = [name for name in required if not hasattr(module, name)]
    if missing:
        raise ArtifactError(f"model file {path} lacks the required methods {missing}")
    try:
        card = json.loads(extra[CARD_NAME]) if extra[CARD_NAME] else {}
    except json.JSONDecodeError:
        raise ArtifactError(f"model file {path} has an unreadable {CARD_NAME}") from None
    return module.eval(), card


def script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    """`module` compiled to TorchScript (on the CPU, in eval mode)."""
    with torchscript():
        return torch.jit.script(module.cpu().eval())


def save(scripted: torch.jit.ScriptModule, path: str | Path, card: dict | None = None) -> Path:
    """Write the scripted module with `card` embedded as the extra file model_card.json."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {CARD_NAME: json.dumps(card, indent=2)} if card is not None else {}
    with torchscript():
        scripted.save(str(path), _extra_files=extra)
    return path
