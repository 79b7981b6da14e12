"""Hostile Open Inference Protocol requests (/v2): every one gets a 4xx in the protocol's
error shape {"error": message}, quickly, never a 5xx, and the service keeps serving.

Covers the issue's list (unknown model, wrong shape, wrong datatype, truncated binary
payload, NaN/Inf, too many rows) and the rest of what a body can get wrong.
"""

import asyncio
import gzip
import json
import time

import numpy as np
import pytest

from app.inference import ModelService
from app.main import create_app
from tests.helpers import time_bound, timed
from tests.oip.helpers import (
    DECODER,
    ENCODER,
    LATENT,
    assert_v2_error,
    binary_request,
    json_request,
    stroke_image,
)
from tests.reliability.conftest import run_async, running

X = stroke_image()
Z = np.zeros((1, LATENT), np.float32)


def raw(header: dict, blob: bytes = b"", length: int | str | None = None):
    """A body of JSON header + bytes, with Inference-Header-Content-Length (its size by default)."""
    encoded = json.dumps(header).encode()
    size = len(encoded) if length is None else length
    return encoded + blob, {"Inference-Header-Content-Length": str(size)}


def with_input(**changes) -> dict:
    body = json_request("image", X)
    body["inputs"][0].update(changes)
    return body


BINARY_HEADER = {
    "inputs": [
        {
            "name": "image",
            "shape": [1, 1, 28, 28],
            "datatype": "FP32",
            "parameters": {"binary_data_size": 3136},
        }
    ]
}
NAN = np.full((1, 1, 28, 28), np.nan, np.float32).tobytes()
INF = np.full((1, 1, 28, 28), np.inf, np.float32).tobytes()

# (case, url, json body or (bytes, headers), status)
CASES = [
    ("unknown model", "/v2/models/vae-nope/infer", json_request("image", X), 404),
    ("unknown version", "/v2/models/vae-encoder/versions/0/infer", json_request("image", X), 404),
    ("wrong shape", ENCODER, with_input(shape=[1, 784]), 400),
    ("wrong inner dims", ENCODER, with_input(shape=[1, 1, 27, 28]), 400),
    ("zero rows", ENCODER, with_input(shape=[0, 1, 28, 28], data=[]), 400),
    ("negative rows", ENCODER, with_input(shape=[-1, 1, 28, 28]), 400),
    ("huge rows", ENCODER, with_input(shape=[10**30, 1, 28, 28]), 413),
    ("too many rows", ENCODER, json_request("image", np.zeros((65, 1, 28, 28))), 413),
    ("too many latents", DECODER, json_request("z", np.zeros((257, LATENT))), 413),
    ("data does not fill the shape", ENCODER, with_input(data=[0.5] * 783), 400),
    ("ragged nested data", ENCODER, with_input(data=[[0.5] * 784, [0.5]]), 400),
    ("strings", ENCODER, with_input(data=["0.5"] * 784), 400),
    ("booleans", ENCODER, with_input(data=[True] * 784), 400),
    ("nulls", ENCODER, with_input(data=[None] * 784), 400),
    ("objects", ENCODER, with_input(data=[{}] * 784), 400),
    ("out of [0, 1]", ENCODER, with_input(data=[2.0] * 784), 400),
    ("FP64 beyond float32", DECODER, json_request("z", np.full((1, LATENT), 1e300), "FP64"), 400),
    ("UINT8 out of range", ENCODER, with_input(datatype="UINT8", data=[256] * 784), 400),
    ("UINT8 latents", DECODER, json_request("z", Z.astype(np.uint8), "UINT8"), 400),
    ("INT32", ENCODER, with_input(datatype="INT32"), 400),
    ("BYTES", ENCODER, with_input(datatype="BYTES"), 400),
    ("BF16", ENCODER, with_input(datatype="BF16"), 400),
    ("lower-case fp32", ENCODER, with_input(datatype="fp32"), 400),
    ("wrong input name", ENCODER, with_input(name="x"), 400),
    ("two inputs", ENCODER, {"inputs": json_request("image", X)["inputs"] * 2}, 400),
    ("no inputs", ENCODER, {"inputs": []}, 400),
    (
        "no data",
        ENCODER,
        {"inputs": [{"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32"}]},
        400,
    ),
    ("unknown output", ENCODER, json_request("image", X, outputs=[{"name": "logits"}]), 400),
    (
        "binary flag not a bool",
        ENCODER,
        json_request("image", X, parameters={"binary_data_output": "yes"}),
        400,
    ),
    ("not an object", ENCODER, [1, 2, 3], 400),
    (
        "shared-memory input",
        ENCODER,
        {"inputs": [{**BINARY_HEADER["inputs"][0], "parameters": {"shared_memory_region": "r"}}]},
        400,
    ),
    (
        "classification output",
        ENCODER,
        json_request("image", X, outputs=[{"name": "mu", "parameters": {"classification": 3}}]),
        400,
    ),
    ("shape of floats", ENCODER, with_input(shape=[1.5, 1, 28, 28]), 400),
    (
        "missing shape",
        ENCODER,
        {"inputs": [{"name": "image", "datatype": "FP32", "data": [0]}]},
        400,
    ),
    ("NaN in binary", ENCODER, raw(BINARY_HEADER, NAN), 400),
    ("Inf in binary", ENCODER, raw(BINARY_HEADER, INF), 400),
    ("truncated binary payload", ENCODER, raw(BINARY_HEADER, X.tobytes()[:-1]), 400),
    ("binary payload too long", ENCODER, raw(BINARY_HEADER, X.tobytes() + b"\0"), 400),
    (
        "binary size does not match the shape",
        ENCODER,
        raw(
            {"inputs": [{**BINARY_HEADER["inputs"][0], "parameters": {"binary_data_size": 3132}}]},
            X.tobytes()[:-4],
        ),
        400,
    ),
    (
        "negative binary size",
        ENCODER,
        raw({"inputs": [{**BINARY_HEADER["inputs"][0], "parameters": {"binary_data_size": -1}}]}),
        400,
    ),
    (
        "both data and binary",
        ENCODER,
        raw({"inputs": [{**BINARY_HEADER["inputs"][0], "data": [0]}]}, X.tobytes()),
        400,
    ),
    ("bytes but no binary input", ENCODER, raw(json_request("image", X), b"\0\0\0\0"), 400),
    ("header length past the body", ENCODER, raw(BINARY_HEADER, X.tobytes(), 10**6), 400),
    ("header length zero", ENCODER, raw(BINARY_HEADER, X.tobytes(), 0), 400),
    ("header length not a number", ENCODER, raw(BINARY_HEADER, X.tobytes(), "12a"), 400),
    ("header length cuts the JSON", ENCODER, raw(BINARY_HEADER, X.tobytes(), 20), 400),
    ("not JSON", ENCODER, (b"\x89PNG\r\n\x1a\n", {}), 400),
    ("empty body", ENCODER, (b"", {}), 400),
    (
        "deeply nested data",
        ENCODER,
        (b'{"inputs": [{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}", {}),
        400,
    ),
]


def post(client, url: str, body):
    if isinstance(body, tuple):
        content, headers = body
        return client.post(url, content=content, headers=headers)
    return client.post(url, json=body)


@pytest.mark.parametrize(("case", "url", "body", "status"), CASES, ids=[c[0] for c in CASES])
def test_hostile_tensors_get_the_protocol_error(client, case, url, body, status):
    valid = json_request("image", X)
    # a hostile request may cost 50 valid ones (the slowest of three, measured now)
    bound = time_bound(max(timed(lambda: post(client, ENCODER, valid))[1] for _ in range(3)))
    response, seconds = timed(lambda: post(client, url, body))
    assert_v2_error(response, status)
    assert seconds < bound
    assert post(client, ENCODER, valid).status_code == 200  # the service is unharmed


def test_a_json_header_over_the_limit_is_413(make_client):
    client = make_client(max_json_bytes=4096)
    body, headers = binary_request("image", X)
    assert client.post(ENCODER, content=body, headers=headers).status_code == 200
    noise = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    big = json.dumps(json_request("image", noise)).encode()  # ~15 KB of JSON numbers
    octets = {"content-type": "application/octet-stream"}  # untyped is JSON to the middleware
    assert "binary" in assert_v2_error(client.post(ENCODER, content=big, headers=octets), 413)
    typed = client.post(ENCODER, content=big, headers={"content-type": "application/json"})
    assert_v2_error(typed, 413)


def test_a_body_over_the_upload_limit_is_413_in_the_protocol_shape(make_client):
    client = make_client(max_upload_bytes=4096)
    body, headers = binary_request("image", np.zeros((2, 1, 28, 28), np.float32))
    assert_v2_error(client.post(ENCODER, content=body, headers=headers), 413)


def test_unknown_paths_and_methods_under_v2_use_the_protocol_shape(client):
    assert_v2_error(client.get("/v2/nothing"), 404)
    assert_v2_error(client.get(ENCODER), 405)
    assert_v2_error(client.get("/v2/models/vae-nope"), 404)
    assert_v2_error(client.get("/v2/models/vae-nope/ready"), 404)


def test_a_compressed_body_is_415(client):
    body = json.dumps(json_request("image", X)).encode()
    response = client.post(
        ENCODER, content=gzip.compress(body), headers={"Content-Encoding": "gzip"}
    )
    assert "uncompressed" in assert_v2_error(response, 415)


def test_not_ready_infer_is_503_with_retry_after(make_client):
    client = make_client()  # its own app: this one is left not ready
    client.app.state.ready = False
    response = client.post(ENCODER, json=json_request("image", X))
    assert_v2_error(response, 503)
    assert response.headers["retry-after"] == "1"


def test_overload_is_503_with_retry_after_in_the_protocol_shape(monkeypatch, settings_for):
    forward = ModelService.forward

    def slow_forward(self, method, x):
        time.sleep(0.2)
        return forward(self, method, x)

    monkeypatch.setattr(ModelService, "forward", slow_forward)
    app = create_app(settings_for(queue_capacity=2, warmup=False))
    body, headers = binary_request("image", X)

    async def flood():
        async with running(app) as client:
            calls = [client.post(ENCODER, content=body, headers=headers) for _ in range(12)]
            return await asyncio.gather(*calls)

    responses = run_async(flood())
    refused = [r for r in responses if r.status_code == 503]
    assert 2 <= sum(r.status_code == 200 for r in responses) < 12
    assert len(refused) + sum(r.status_code == 200 for r in responses) == 12
    for response in refused:
        assert "queued" in assert_v2_error(response, 503)
        assert response.headers["retry-after"] == "1"
