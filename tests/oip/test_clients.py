"""The protocol through clients no one here wrote: tritonclient[http] and KServe's Python
client, against a real `vae-serve` on the shipped model, on a real MNIST test digit.

The clients live in .venv-oip-clients (their pins clash with ours; .ci/oip-clients-tools.sh
makes it, and this module runs that script when the venv is missing: PyPI only, no root).
tests/oip/client_roundtrips.py does the client calls; here their answers are compared with
the REST routes' on the same server: mu and sigma with /encode's, images with /decode's.
"""

import json
import subprocess

import httpx
import numpy as np
import pytest

from model.data import load_mnist
from tests.conftest import ROOT, SHIPPED_MODEL, png_bytes
from tests.helpers import free_port, wait_ready
from tests.reliability.conftest import start_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # the first run installs the clients
CLIENTS_PYTHON = ROOT / ".venv-oip-clients" / "bin" / "python"
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture(scope="module")
def clients_python() -> str:
    subprocess.run(["bash", str(ROOT / ".ci" / "oip-clients-tools.sh")], check=True, timeout=900)
    return str(CLIENTS_PYTHON)


@pytest.fixture(scope="module")
def server_url():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server({"VAE_MODEL_PATH": str(SHIPPED_MODEL), "VAE_PORT": str(port)})
    try:
        wait_ready(url, server)
        yield url
    finally:
        server.terminate()
        server.communicate(timeout=30)


@pytest.fixture(scope="module")
def digit(mnist_dir) -> np.ndarray:
    """A 28x28 test digit as uint8, exactly what /encode receives as PNG."""
    images, _ = load_mnist("test", mnist_dir)
    return np.asarray(images[0], np.uint8)


@pytest.fixture(scope="module")
def seen(clients_python, server_url, digit, tmp_path_factory) -> dict:
    inputs = tmp_path_factory.mktemp("oip") / "inputs.npz"
    z = np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32)
    image = (digit.astype(np.float32) / 255)[None, None]
    np.savez(inputs, image=image, z=z)
    script = ROOT / "tests" / "oip" / "client_roundtrips.py"
    run = subprocess.run(
        [clients_python, str(script), server_url, str(inputs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return {**json.loads(run.stdout), "z": z}


@pytest.fixture(scope="module")
def rest(server_url, digit, seen) -> dict:
    encoded = httpx.post(f"{server_url}/encode", files={"file": ("d.png", png_bytes(digit))})
    assert encoded.status_code == 200
    decoded = httpx.post(f"{server_url}/decode?format=json", json={"z": seen["z"].tolist()})
    assert decoded.status_code == 200
    classified = httpx.post(f"{server_url}/classify", files={"file": ("d.png", png_bytes(digit))})
    assert classified.status_code == 200
    return {
        "encode": encoded.json(),
        "pixels": np.array(decoded.json()["pixels"]),
        "classify": classified.json(),
    }


@pytest.mark.parametrize("client", ["triton", "kserve"])
def test_health_and_readiness(seen, client):
    assert seen[client]["live"] is True
    assert seen[client]["ready"] is True
    ready = seen[client].get("models_ready", [seen[client].get("model_ready")])
    assert all(r is True for r in ready)


def test_tritonclient_reads_server_and_model_metadata(seen):
    triton = seen["triton"]
    assert triton["server"]["name"] == "vae-serve"
    assert "binary_tensor_data" in triton["server"]["extensions"]
    encoder = triton["encoder"]
    assert encoder["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
    assert [o["name"] for o in encoder["outputs"]] == ["mu", "sigma", "kl"]
    assert encoder["outputs"][0]["shape"] == [-1, 32]
    assert triton["decoder"]["inputs"] == [{"name": "z", "datatype": "FP32", "shape": [-1, 32]}]


@pytest.mark.parametrize("client", ["triton", "kserve"])
@pytest.mark.parametrize("kind", ["json", "binary"])
def test_encoder_mu_and_sigma_equal_encode(seen, rest, client, kind):
    got = seen[client][f"encode_{kind}"]
    assert set(got) == {"mu", "sigma"}  # only the requested outputs
    np.testing.assert_allclose(got["mu"][0], rest["encode"]["mu"], **TOLERANCE)
    np.testing.assert_allclose(got["sigma"][0], rest["encode"]["sigma"], **TOLERANCE)
    assert seen[client][f"encode_{kind}_id"] == {"triton": "t-1", "kserve": "k-1"}[client]


@pytest.mark.parametrize("client", ["triton", "kserve"])
@pytest.mark.parametrize("kind", ["json", "binary"])
def test_decoder_images_equal_decode(seen, rest, client, kind):
    images = np.array(seen[client][f"decode_{kind}"])
    assert images.shape == (16, 1, 28, 28)
    np.testing.assert_allclose(images[:, 0], rest["pixels"], **TOLERANCE)


def test_tritonclient_classifies_like_classify(seen, rest):
    got, expected = seen["triton"]["classify"], rest["classify"]
    np.testing.assert_allclose(got["probabilities"][0], expected["probabilities"], **TOLERANCE)
    np.testing.assert_allclose(got["mu"][0], expected["mu"], **TOLERANCE)
    assert int(np.argmax(got["probabilities"][0])) == expected["digit"]


@pytest.mark.parametrize("client", ["triton", "kserve"])
def test_an_unknown_model_is_a_404_the_client_reports(seen, client):
    error = seen[client]["unknown_model"]
    assert str(error["status"]) == "404"
    assert "no model named 'vae-nope'" in error["message"]
