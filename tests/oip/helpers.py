"""Requests of the Open Inference Protocol built by hand (JSON and binary), and its error shape.

Written from the specification, independently of app/oip: the client tests
(test_clients.py) check the same endpoints with tritonclient and KServe's client.
"""

import json

import httpx
import numpy as np

from tests.reliability.conftest import ROOT

LATENT = 4  # the tiny model's D
ENCODER = "/v2/models/vae-encoder/infer"
DECODER = "/v2/models/vae-decoder/infer"
RECONSTRUCT = "/v2/models/vae-reconstruct/infer"
WIRE = {"FP32": "<f4", "FP64": "<f8", "FP16": "<f2", "UINT8": "u1"}


def stroke_image() -> np.ndarray:
    """(1, 1, 28, 28) float32: an MNIST-like '1'."""
    x = np.zeros((1, 1, 28, 28), np.float32)
    x[0, 0, 4:24, 13:16] = 1.0
    return x


def json_request(name: str, array: np.ndarray, datatype: str = "FP32", **extra) -> dict:
    tensor = {"name": name, "shape": list(array.shape), "datatype": datatype}
    return {"inputs": [{**tensor, "data": array.ravel().tolist()}], **extra}


def binary_request(
    name: str, array: np.ndarray, datatype: str = "FP32", outputs: list[str] | None = None
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a binary-data request; outputs asked as binary (all if None)."""
    blob = array.astype(WIRE[datatype]).tobytes()
    tensor = {"name": name, "shape": list(array.shape), "datatype": datatype}
    header: dict = {"inputs": [{**tensor, "parameters": {"binary_data_size": len(blob)}}]}
    if outputs is None:
        header["parameters"] = {"binary_data_output": True}
    else:
        header["outputs"] = [{"name": o, "parameters": {"binary_data": True}} for o in outputs]
    encoded = json.dumps(header).encode()
    return encoded + blob, {"Inference-Header-Content-Length": str(len(encoded))}


def outputs_of(response: httpx.Response) -> dict[str, np.ndarray]:
    """Every output of an infer response (JSON or binary), shaped."""
    length = response.headers.get("inference-header-content-length")
    size = int(length) if length is not None else len(response.content)
    header = json.loads(response.content[:size])
    offset, arrays = size, {}
    for output in header["outputs"]:
        assert output["datatype"] == "FP32"
        if "data" in output:
            values = np.array(output["data"], np.float32)
        else:
            nbytes = output["parameters"]["binary_data_size"]
            values = np.frombuffer(response.content[offset : offset + nbytes], "<f4")
            offset += nbytes
        arrays[output["name"]] = values.reshape(output["shape"])
    assert offset == len(response.content)  # nothing left over
    return arrays


def assert_v2_error(response: httpx.Response, status: int) -> str:
    """The protocol's error object {"error": message}, with no stack trace or source path."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    assert "Traceback" not in response.text and ".py" not in response.text, body
    assert str(ROOT) not in response.text, body
    return body["error"]
