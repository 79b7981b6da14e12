"""Request tensors in, response tensors out: JSON data or Triton's binary tensor data extension.

A request body is a JSON header, optionally followed by raw little-endian tensor bytes
(`Inference-Header-Content-Length` gives the header's size; each binary input declares
`binary_data_size`). Inputs become float32 arrays checked against the model's shape,
row limit (app/limits.py, as the REST route of the same operation) and value range before
any model work; outputs go back as JSON numbers or, when
asked (`binary_data`, `binary_data_output`), as bytes after the JSON header.
"""

from dataclasses import dataclass
from math import isfinite, prod

import numpy as np
import orjson
from fastapi import Response
from pydantic import ValidationError
from torch import Tensor

from app import limits
from app.errors import APIError, describe_errors
from app.limits import Limit
from app.oip.schemas import InferenceRequest, Parameters
from app.settings import Settings

HEADER_LENGTH = "inference-header-content-length"
# Wire datatypes accepted for input tensors; every float converts exactly or within float32's
# own rounding, UINT8 only for images (grey levels 0..255, divided by 255).
WIRE_DTYPES = {
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "FP16": np.dtype("<f2"),
    "UINT8": np.dtype("u1"),
}
FLOATS = ("FP32", "FP64", "FP16")
# Parameters of Triton extensions this server does not implement (its metadata lists only
# binary_tensor_data): refused, rather than ignored into a silently different answer.
UNSUPPORTED = {"shared_memory_region": "shared-memory", "classification": "classification"}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a served model, as its metadata describes it."""

    name: str
    shape: tuple[int, ...]  # -1 for the batch dimension
    datatypes: tuple[str, ...] = ("FP32",)  # what an input accepts; outputs are FP32
    unit_interval: bool = False  # values must lie in [0, 1] (pixel intensities)

    def metadata(self) -> dict:
        return {"name": self.name, "datatype": "FP32", "shape": list(self.shape)}


def bad_tensor(detail: str, code: str = "invalid_tensor") -> APIError:
    return APIError(400, code, detail)


def split_body(
    body: bytes, header_length: str | None, settings: Settings
) -> tuple[bytes, memoryview]:
    """The JSON header and a view of the binary tensor data after it (empty without the
    extension; a view, so a batch's bytes are not copied before numpy reads them)."""
    size = len(body)
    if header_length is not None:
        if not (header_length.isascii() and header_length.isdigit()):
            raise bad_tensor("Inference-Header-Content-Length must be a byte count", "bad_header")
        size = int(header_length)
        if not 0 < size <= len(body):
            raise bad_tensor(
                f"Inference-Header-Content-Length is {size} but the body holds {len(body)} bytes",
                "bad_header",
            )
    if size > settings.max_json_bytes:  # parsed on the event loop: the REST routes' JSON bound
        error = limits.JSON_BYTES.error(size, settings.max_json_bytes)
        error.detail += "; send large tensors as binary data (binary_data_size)"
        raise error
    return body[:size], memoryview(body)[size:]


def parse_request(header: bytes) -> InferenceRequest:
    try:
        return InferenceRequest.model_validate_json(header)
    except ValidationError as e:
        raise bad_tensor(describe_errors(e.errors()), "invalid_request") from None


def refuse_extensions(parameters: Parameters | None, where: str) -> None:
    for key, extension in UNSUPPORTED.items():
        if key in (parameters or {}):
            raise bad_tensor(f"{where}: the {extension} extension is not supported", "unsupported")


def flag(parameters: Parameters | None, key: str) -> bool:
    value = (parameters or {}).get(key, False)
    if not isinstance(value, bool):
        raise bad_tensor(f"parameter {key} must be true or false", "invalid_request")
    return value


def binary_size(parameters: Parameters | None) -> int | None:
    value = (parameters or {}).get("binary_data_size")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_tensor("parameter binary_data_size must be a byte count", "invalid_binary_data")
    return value


def check_shape(
    shape: list[int], spec: TensorSpec, rows: Limit, settings: Settings
) -> tuple[int, ...]:
    wanted = ["N", *spec.shape[1:]]
    if len(shape) != len(spec.shape) or list(shape[1:]) != list(spec.shape[1:]):
        raise bad_tensor(
            f"input '{spec.name}' must have shape [{', '.join(map(str, wanted))}], not {shape}"
        )
    if shape[0] < 1:
        raise bad_tensor(f"input '{spec.name}' holds no row")
    rows.check(shape[0], settings)
    return tuple(shape)


def json_values(data: list, datatype: str, name: str) -> np.ndarray:
    """A (nested) JSON list as an array, refusing strings, booleans, nulls and ragged lists."""
    try:
        array = np.array(data)
    except (ValueError, TypeError, OverflowError):
        array = None
    kinds = "iu" if datatype == "UINT8" else "fiu"
    if array is None or array.dtype.kind not in kinds:
        kind = "integers" if datatype == "UINT8" else "numbers"
        raise bad_tensor(f"input '{name}' data must be a flat or nested list of {kind}")
    if datatype == "UINT8" and array.size and (array.min() < 0 or array.max() > 255):
        raise bad_tensor(f"input '{name}' UINT8 values must lie in 0..255")
    return array


def input_array(
    request: InferenceRequest, spec: TensorSpec, binary: memoryview, rows: Limit, settings: Settings
) -> np.ndarray:
    """The request's one input as a checked float32 array of its declared shape."""
    if len(request.inputs) != 1 or request.inputs[0].name != spec.name:
        given = [i.name for i in request.inputs]
        raise bad_tensor(f"this model takes one input named '{spec.name}', not {given}")
    tensor = request.inputs[0]
    refuse_extensions(tensor.parameters, f"input '{spec.name}'")
    if tensor.datatype not in spec.datatypes:
        raise bad_tensor(
            f"input '{spec.name}' datatype {tensor.datatype!r} is not supported: send one of "
            f"{', '.join(spec.datatypes)}",
            "unsupported_datatype",
        )
    shape = check_shape(tensor.shape, spec, rows, settings)
    dtype = WIRE_DTYPES[tensor.datatype]
    declared = binary_size(tensor.parameters)
    if declared is not None:
        expected = prod(shape) * dtype.itemsize
        if tensor.data is not None:
            raise bad_tensor(f"input '{spec.name}' has both data and binary_data_size")
        if declared != expected:
            raise bad_tensor(
                f"input '{spec.name}' of shape {list(shape)} {tensor.datatype} takes {expected} "
                f"bytes, not binary_data_size {declared}",
                "invalid_binary_data",
            )
        if len(binary) != declared:
            raise bad_tensor(
                f"the body holds {len(binary)} bytes of binary data; the inputs declare {declared}",
                "invalid_binary_data",
            )
        array = np.frombuffer(binary, dtype=dtype)
    else:
        if binary:
            raise bad_tensor(
                "bytes follow the JSON header but no input declares binary_data_size",
                "invalid_binary_data",
            )
        if tensor.data is None:
            raise bad_tensor(f"input '{spec.name}' has no data and no binary_data_size")
        array = json_values(tensor.data, tensor.datatype, spec.name)
        if array.size != prod(shape):
            raise bad_tensor(
                f"input '{spec.name}' has {array.size} values; shape {list(shape)} needs "
                f"{prod(shape)}"
            )
    return as_float32(array.reshape(shape), spec, tensor.datatype)


def as_float32(array: np.ndarray, spec: TensorSpec, datatype: str) -> np.ndarray:
    with np.errstate(over="ignore"):  # FP64 beyond float32 becomes Inf, refused below
        x = array.astype(np.float32)  # always a fresh, writable copy
    if datatype == "UINT8":
        x /= 255
    # Two reductions instead of three: NaN propagates into min and max, and an Inf is one.
    low, high = float(x.min()), float(x.max())
    if not (isfinite(low) and isfinite(high)):  # NaN, Inf, or FP64 beyond float32's range
        raise bad_tensor(f"input '{spec.name}' values must be finite float32 numbers")
    if spec.unit_interval and (low < 0 or high > 1):
        raise bad_tensor(f"input '{spec.name}' values must lie in [0, 1]")
    return x


def requested_outputs(request: InferenceRequest, names: list[str]) -> list[tuple[str, bool]]:
    """(name, as binary) of every output to return, in the order asked (default: all)."""
    every_binary = flag(request.parameters, "binary_data_output")
    if request.outputs is None:
        return [(name, every_binary) for name in names]
    wanted = []
    for output in request.outputs:
        if output.name not in names:
            raise bad_tensor(f"no output named '{output.name}': this model has {names}")
        refuse_extensions(output.parameters, f"output '{output.name}'")
        asked = output.parameters is not None and "binary_data" in output.parameters
        binary = flag(output.parameters, "binary_data") if asked else every_binary
        wanted.append((output.name, binary))
    return wanted


def infer_response(
    header: dict, wanted: list[tuple[str, bool]], tensors: dict[str, Tensor]
) -> Response:
    """JSON outputs inline, binary ones as bytes after the JSON header (in the same order)."""
    outputs, blobs = [], []
    for name, binary in wanted:
        array = tensors[name].numpy()
        entry = {"name": name, "datatype": "FP32", "shape": list(array.shape)}
        if binary:
            blob = array.astype("<f4", copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = array.ravel()
        outputs.append(entry)
    body = orjson.dumps({**header, "outputs": outputs}, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return Response(body, media_type="application/json")
    return Response(
        b"".join([body, *blobs]),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(body))},
    )
