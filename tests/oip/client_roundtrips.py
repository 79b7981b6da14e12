"""Round trips through clients no one here wrote: tritonclient[http] and KServe's client.

Run by test_clients.py with the interpreter of .venv-oip-clients (their pins clash with
ours: tritonclient needs greenlet < 3.4; kserve pulls its own FastAPI and gRPC stack), so
it imports nothing of this project:

    .venv-oip-clients/bin/python tests/oip/client_roundtrips.py URL inputs.npz > out.json

inputs.npz holds `image` (N, 1, 28, 28) float32 and `z` (M, D) float32; stdout gets one
JSON object: what each client saw (health, metadata, outputs of JSON and binary infers,
the error of an unknown model).
"""

import asyncio
import json
import sys

import numpy as np


def triton_round_trips(url: str, image: np.ndarray, z: np.ndarray) -> dict:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url.removeprefix("http://"))
    seen: dict = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "models_ready": [client.is_model_ready(m) for m in ("vae-encoder", "vae-decoder")],
        "server": client.get_server_metadata(),
        "encoder": client.get_model_metadata("vae-encoder"),
        "decoder": client.get_model_metadata("vae-decoder"),
    }
    version = seen["encoder"]["versions"][0]
    for binary in (False, True):
        kind = "binary" if binary else "json"
        tensor = triton.InferInput("image", list(image.shape), "FP32")
        tensor.set_data_from_numpy(image, binary_data=binary)
        outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("mu", "sigma")]
        result = client.infer("vae-encoder", [tensor], outputs=outputs, request_id="t-1")
        seen[f"encode_{kind}"] = {n: result.as_numpy(n).tolist() for n in ("mu", "sigma")}
        seen[f"encode_{kind}_id"] = result.get_response()["id"]
        latent = triton.InferInput("z", list(z.shape), "FP32")
        latent.set_data_from_numpy(z, binary_data=binary)
        # No outputs named: tritonclient asks for every output as binary.
        result = client.infer("vae-decoder", [latent], model_version=version)
        seen[f"decode_{kind}"] = result.as_numpy("image").tolist()
    tensor = triton.InferInput("image", list(image.shape), "FP32")
    tensor.set_data_from_numpy(image)
    result = client.infer("vae-classify", [tensor])  # a capability of the shipped model
    seen["classify"] = {n: result.as_numpy(n).tolist() for n in ("probabilities", "mu")}
    try:
        client.get_model_metadata("vae-nope")
    except InferenceServerException as e:
        seen["unknown_model"] = {"status": e.status(), "message": e.message()}
    client.close()
    return seen


async def kserve_round_trips(url: str, image: np.ndarray, z: np.ndarray) -> dict:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
    from kserve.protocol.infer_type import RequestedOutput

    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    seen: dict = {
        "live": await client.is_server_live(url),
        "ready": await client.is_server_ready(url),
        "model_ready": await client.is_model_ready(url, "vae-encoder"),
    }
    for binary in (False, True):
        kind = "binary" if binary else "json"
        tensor = InferInput("image", list(image.shape), "FP32")
        tensor.set_data_from_numpy(image, binary_data=binary)
        outputs = [RequestedOutput(n, parameters={"binary_data": binary}) for n in ("mu", "sigma")]
        request = InferRequest("vae-encoder", [tensor], request_id="k-1", request_outputs=outputs)
        response = await client.infer(url, request, model_name="vae-encoder")
        got = {o.name: o.as_numpy().tolist() for o in response.outputs}
        seen[f"encode_{kind}"] = got
        seen[f"encode_{kind}_id"] = response.id
        latent = InferInput("z", list(z.shape), "FP32")
        latent.set_data_from_numpy(z, binary_data=binary)
        parameters = {"binary_data_output": binary}
        request = InferRequest("vae-decoder", [latent], parameters=parameters)
        response = await client.infer(url, request, model_name="vae-decoder")
        seen[f"decode_{kind}"] = response.outputs[0].as_numpy().tolist()
    try:
        await client.infer(url, InferRequest("vae-nope", [tensor]), model_name="vae-nope")
    except Exception as e:  # httpx.HTTPStatusError, with the server's message in it
        seen["unknown_model"] = {"status": e.response.status_code, "message": str(e)}
    await client.close()
    return seen


def main() -> None:
    url, inputs = sys.argv[1], np.load(sys.argv[2])
    image, z = inputs["image"], inputs["z"]
    seen = {
        "triton": triton_round_trips(url, image, z),
        "kserve": asyncio.run(kserve_round_trips(url, image, z)),
    }
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main()
