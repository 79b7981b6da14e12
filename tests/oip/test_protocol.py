"""The Open Inference Protocol under /v2, in-process on the tiny model: metadata, health,
infer with JSON and binary tensors, and agreement with the REST routes."""

import asyncio
import json
import time

import numpy as np
import pytest

from app.inference import ModelService
from app.main import create_app
from tests.conftest import png_bytes
from tests.oip.helpers import (
    DECODER,
    ENCODER,
    LATENT,
    RECONSTRUCT,
    assert_v2_error,
    binary_request,
    json_request,
    outputs_of,
    stroke_image,
)
from tests.reliability.conftest import run_async, running

PNG = {"content-type": "image/png"}


def sample(text: str, series: str) -> float:
    """The value of one series in a Prometheus exposition (0 when absent)."""
    line = next((line for line in text.splitlines() if line.startswith(series)), None)
    return float(line.split()[-1]) if line else 0.0


def test_server_metadata_names_the_binary_extension(client):
    response = client.get("/v2")
    assert response.status_code == 200
    assert response.json() == {
        "name": "vae-serve",
        "version": client.app.version,
        "extensions": ["binary_tensor_data"],
    }


def test_health_and_model_ready(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True}
    for model in ("vae-encoder", "vae-decoder", "vae-reconstruct"):
        response = client.get(f"/v2/models/{model}/ready")
        assert response.status_code == 200
        assert response.json() == {"name": model, "ready": True}


def test_not_ready_while_draining_like_readyz(make_client):
    client = make_client()  # its own app: this one is left draining
    client.app.state.draining = True
    assert client.get("/readyz").status_code == 503
    response = client.get("/v2/health/ready")
    assert response.status_code == 400  # the protocol's 'false' is a 4xx
    assert response.json() == {"ready": False}
    model = client.get("/v2/models/vae-encoder/ready")
    assert model.status_code == 400
    assert model.json() == {"name": "vae-encoder", "ready": False}
    assert client.get("/v2/health/live").status_code == 200


def test_model_metadata_shapes_use_minus_one_for_the_batch(client):
    response = client.get("/v2/models/vae-encoder")
    assert response.status_code == 200
    version = client.get("/model").json()["version"]
    assert response.json() == {
        "name": "vae-encoder",
        "versions": [version],
        "platform": "pytorch_torchscript",
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]}],
        "outputs": [
            {"name": "mu", "datatype": "FP32", "shape": [-1, LATENT]},
            {"name": "sigma", "datatype": "FP32", "shape": [-1, LATENT]},
            {"name": "kl", "datatype": "FP32", "shape": [-1]},
        ],
    }
    decoder = client.get(f"/v2/models/vae-decoder/versions/{version}").json()
    assert decoder["inputs"] == [{"name": "z", "datatype": "FP32", "shape": [-1, LATENT]}]
    assert decoder["outputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]


def test_versions_paths_serve_the_one_version_and_refuse_others(client):
    version = client.get("/model").json()["version"]
    body = json_request("image", stroke_image())
    for path in ("", "/ready", "/infer"):
        url = f"/v2/models/vae-encoder/versions/{version}{path}"
        response = client.post(url, json=body) if path == "/infer" else client.get(url)
        assert response.status_code == 200, url
        wrong = f"/v2/models/vae-encoder/versions/999{path}"
        response = client.post(wrong, json=body) if path == "/infer" else client.get(wrong)
        assert "999" in assert_v2_error(response, 404)


def test_encoder_json_and_binary_agree_with_encode(client):
    x = stroke_image()
    rest = client.post("/encode", files={"file": ("d.png", png_bytes(x[0, 0] * 255))})
    assert rest.status_code == 200
    expected = rest.json()
    by_json = client.post(ENCODER, json=json_request("image", x, id="req-7"))
    assert by_json.status_code == 200
    assert by_json.headers["content-type"] == "application/json"
    assert by_json.json()["id"] == "req-7"
    assert by_json.json()["model_name"] == "vae-encoder"
    body, headers = binary_request("image", x)
    by_binary = client.post(ENCODER, content=body, headers=headers)
    assert by_binary.status_code == 200
    assert by_binary.headers["content-type"] == "application/octet-stream"
    for response in (by_json, by_binary):
        outputs = outputs_of(response)
        assert outputs["mu"].shape == outputs["sigma"].shape == (1, LATENT)
        assert outputs["kl"].shape == (1,)
        np.testing.assert_allclose(outputs["mu"][0], expected["mu"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(outputs["sigma"][0], expected["sigma"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(outputs["kl"][0], expected["kl"], rtol=1e-5)


def test_nested_json_data_equals_flat(client):
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    flat = client.post(ENCODER, json=json_request("image", x))
    nested_body = json_request("image", x)
    nested_body["inputs"][0]["data"] = x.tolist()
    nested = client.post(ENCODER, json=nested_body)
    assert flat.status_code == nested.status_code == 200
    np.testing.assert_array_equal(outputs_of(flat)["mu"], outputs_of(nested)["mu"])


def test_decoder_agrees_with_decode(client):
    z = np.random.default_rng(1).standard_normal((16, LATENT)).astype(np.float32)
    rest = client.post("/decode?format=json", json={"z": z.tolist()})
    assert rest.status_code == 200
    expected = np.array(rest.json()["pixels"], np.float32)  # (16, 28, 28)
    for body, headers in [(None, None), binary_request("z", z)]:
        if body is None:
            response = client.post(DECODER, json=json_request("z", z))
        else:
            response = client.post(DECODER, content=body, headers=headers)
        assert response.status_code == 200
        images = outputs_of(response)["image"]
        assert images.shape == (16, 1, 28, 28)
        np.testing.assert_allclose(images[:, 0], expected, atol=1e-6)


def test_reconstruct_agrees_with_the_rest_route(client):
    x = stroke_image()
    rest = client.post(
        "/reconstruct?format=json", files={"file": ("d.png", png_bytes(x[0, 0] * 255))}
    )
    assert rest.status_code == 200
    response = client.post(RECONSTRUCT, json=json_request("image", x))
    assert response.status_code == 200
    image = outputs_of(response)["image"]
    np.testing.assert_allclose(image[0, 0], rest.json()["pixels"][0], atol=1e-6)


def test_requested_outputs_select_order_and_encoding(client):
    x = stroke_image()
    body = json_request(
        "image",
        x,
        outputs=[{"name": "sigma", "parameters": {"binary_data": True}}, {"name": "mu"}],
    )
    response = client.post(ENCODER, json=body)
    assert response.status_code == 200
    length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:length])
    assert [o["name"] for o in header["outputs"]] == ["sigma", "mu"]
    assert header["outputs"][0]["parameters"] == {"binary_data_size": LATENT * 4}
    assert "data" in header["outputs"][1]
    assert set(outputs_of(response)) == {"sigma", "mu"}


@pytest.mark.parametrize(("datatype", "scale"), [("FP64", 1.0), ("FP16", 1.0), ("UINT8", 255.0)])
@pytest.mark.parametrize("binary", [False, True])
def test_other_datatypes_give_the_fp32_answer(client, datatype, scale, binary):
    x = stroke_image()
    reference = outputs_of(client.post(ENCODER, json=json_request("image", x)))["mu"]
    array = (x * scale).astype(np.uint8) if datatype == "UINT8" else x
    if binary:
        body, headers = binary_request("image", array, datatype)
        response = client.post(ENCODER, content=body, headers=headers)
    else:
        response = client.post(ENCODER, json=json_request("image", array, datatype))
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(outputs_of(response)["mu"], reference, rtol=1e-5, atol=1e-6)


def test_a_batch_is_one_model_call(client):
    x = np.random.default_rng(2).random((64, 1, 28, 28), dtype=np.float32)
    before = client.get("/metrics").text
    body, headers = binary_request("image", x)
    response = client.post(ENCODER, content=body, headers=headers)
    assert response.status_code == 200
    assert outputs_of(response)["mu"].shape == (64, LATENT)
    after = client.get("/metrics").text
    calls = 'vae_batch_size_count{operation="encode"}'
    rows = 'vae_batch_size_sum{operation="encode"}'
    assert sample(after, calls) - sample(before, calls) == 1
    assert sample(after, rows) - sample(before, rows) == 64


def test_metrics_label_the_protocol_and_request_ids_are_echoed(client):
    response = client.post(
        ENCODER, json=json_request("image", stroke_image()), headers={"X-Request-ID": "abc-1"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "abc-1"
    assert client.get("/model").status_code == 200
    text = client.get("/metrics").text
    assert (
        'vae_http_requests_total{method="POST",protocol="v2",'
        'route="/v2/models/{model_name}/infer",status="200"}'
    ) in text
    assert (
        'vae_http_requests_total{method="GET",protocol="rest",route="/model",status="200"}' in text
    )


def test_api_key_guards_everything_but_health(make_client):
    client = make_client(api_key="s3cret")
    for url in ("/v2", "/v2/models/vae-encoder", "/v2/models/vae-encoder/ready"):
        assert "API key" in assert_v2_error(client.get(url), 401)
    response = client.post(ENCODER, json=json_request("image", stroke_image()))
    assert_v2_error(response, 401)
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    keyed = client.post(
        ENCODER, json=json_request("image", stroke_image()), headers={"X-API-Key": "s3cret"}
    )
    assert keyed.status_code == 200


def test_openapi_documents_the_protocol(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{model_name}",
        "/v2/models/{model_name}/ready",
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}",
        "/v2/models/{model_name}/versions/{model_version}/ready",
        "/v2/models/{model_name}/versions/{model_version}/infer",
    ):
        assert path in paths, path
    infer = paths["/v2/models/{model_name}/infer"]["post"]
    assert set(infer["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    request = infer["requestBody"]["content"]["application/json"]["schema"]
    assert "$ref" not in json.dumps(request)  # inlined: "#/$defs/..." would not resolve here
    assert request["properties"]["inputs"]["items"]["required"] == ["name", "shape", "datatype"]
    assert {"400", "404", "413", "503"} <= set(infer["responses"])


def test_v2_and_rest_requests_share_batches(monkeypatch, settings_for):
    """While the model is busy, a v2 infer and a REST /encode queue up and run as one call."""
    forward = ModelService.forward

    def slow_forward(self, method, x):
        time.sleep(0.3)
        return forward(self, method, x)

    monkeypatch.setattr(ModelService, "forward", slow_forward)
    app = create_app(settings_for(warmup=False))
    png = png_bytes(stroke_image()[0, 0] * 255)
    body, headers = binary_request("image", np.repeat(stroke_image(), 2, axis=0))

    async def scenario():
        async with running(app) as client:
            before = (await client.get("/metrics")).text
            first = asyncio.create_task(client.post("/encode", content=png, headers=PNG))
            await asyncio.sleep(0.1)  # the first call is now running on the model thread
            v2, rest = await asyncio.gather(
                client.post(ENCODER, content=body, headers=headers),
                client.post("/encode", content=png, headers=PNG),
            )
            return await first, v2, rest, before, (await client.get("/metrics")).text

    first, v2, rest, before, after = run_async(scenario())
    assert first.status_code == v2.status_code == rest.status_code == 200
    assert outputs_of(v2)["mu"].shape == (2, LATENT)
    rows = 'vae_batch_size_sum{operation="encode"}'
    calls = 'vae_batch_size_count{operation="encode"}'
    assert sample(after, rows) - sample(before, rows) == 4
    # 1 row, then the v2 infer's 2 rows with the REST row (all 4 at once on a slow start)
    assert sample(after, calls) - sample(before, calls) < 3


def test_score_and_classify_are_models_only_when_the_file_has_them(client, heads_client):
    for model in ("vae-score", "vae-classify"):
        assert "no model named" in assert_v2_error(client.get(f"/v2/models/{model}"), 404)
        assert heads_client.get(f"/v2/models/{model}").status_code == 200
    score = heads_client.get("/v2/models/vae-score").json()
    assert [o["name"] for o in score["outputs"]] == [
        "elbo",
        "reconstruction",
        "kl",
        "log_likelihood",
        "bits_per_dim",
        "percentile",
        "ood_score",
        "ood_percentile",
        "typical",
    ]
    assert all(o["shape"] == [-1] for o in score["outputs"])
    classify = heads_client.get("/v2/models/vae-classify").json()
    assert classify["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "mu", "datatype": "FP32", "shape": [-1, LATENT]},
    ]


def test_classify_agrees_with_the_rest_route(heads_client):
    x = np.repeat(stroke_image(), 2, axis=0)
    x[1, 0] = np.eye(28, dtype=np.float32)
    files = [("file", (f"{i}.png", png_bytes(x[i, 0] * 255))) for i in range(2)]
    rest = heads_client.post("/classify", files=files)
    assert rest.status_code == 200
    body, headers = binary_request("image", x)
    response = heads_client.post("/v2/models/vae-classify/infer", content=body, headers=headers)
    assert response.status_code == 200
    outputs = outputs_of(response)
    for i, expected in enumerate(rest.json()):
        np.testing.assert_allclose(
            outputs["probabilities"][i], expected["probabilities"], rtol=1e-5
        )
        np.testing.assert_allclose(outputs["mu"][i], expected["mu"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs["probabilities"].sum(1), 1, rtol=1e-5)


def test_score_takes_k_as_a_parameter_and_agrees_with_the_rest_route(heads_client):
    x = stroke_image()
    rest = heads_client.post("/score?k=7", files={"file": ("d.png", png_bytes(x[0, 0] * 255))})
    assert rest.status_code == 200
    url = "/v2/models/vae-score/infer"
    response = heads_client.post(url, json=json_request("image", x, parameters={"k": 7}))
    assert response.status_code == 200
    outputs = outputs_of(response)
    assert all(v.shape == (1,) and np.isfinite(v).all() for v in outputs.values())
    np.testing.assert_allclose(outputs["kl"][0], rest.json()["kl"], rtol=1e-5)  # no sampling
    assert outputs["typical"][0] in (0.0, 1.0)
    assert 0 <= outputs["percentile"][0] <= 100
    for k, status in [(0, 400), ("7", 400), (True, 400), (10**6, 413)]:
        bad = json_request("image", x, parameters={"k": k})
        assert_v2_error(heads_client.post(url, json=bad), status)
