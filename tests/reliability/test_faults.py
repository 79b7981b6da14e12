"""Faults: a model that cannot be served stops start-up with one clear line and a non-zero
exit; a model call that raises gives a JSON 500, is counted, and the next request succeeds.
"""

import re

import pytest
import torch
from fastapi.testclient import TestClient
from torch import Tensor, nn

from app.inference import ModelLoadError, ModelService
from app.main import create_app
from model import artifact
from tests.helpers import assert_error, free_port
from tests.reliability.conftest import ROOT, start_server

PNG = {"content-type": "image/png"}


class EncodeOnly(nn.Module):
    latent_dim: int = 4

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.flatten(1)[:, :4], x.flatten(1)[:, :4].exp()


@pytest.fixture
def broken_models(tmp_path) -> dict[str, tuple[dict, str]]:
    """name -> (settings overrides, what the one-line error must say)."""
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(range(256)) * 64)
    encode_only = tmp_path / "encode_only.pt"
    artifact.save(artifact.script(EncodeOnly()), encode_only)
    return {
        "missing file": ({"model_path": tmp_path / "nope.pt"}, "does not exist"),
        "corrupt file": ({"model_path": corrupt}, "is not a TorchScript archive"),
        "lacks methods": ({"model_path": encode_only}, "lacks the required methods"),
        "no CUDA": ({"device": "cuda"}, "CUDA is not available"),
        "not a device": ({"device": "tpu"}, "is not"),
    }


@pytest.mark.parametrize(
    "name", ["missing file", "corrupt file", "lacks methods", "no CUDA", "not a device"]
)
def test_lifespan_refuses_a_model_it_cannot_serve(broken_models, settings_for, name):
    if name == "no CUDA" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    overrides, says = broken_models[name]
    app = create_app(settings_for(**overrides))
    with pytest.raises(ModelLoadError) as error, TestClient(app):
        pass
    message = str(error.value)
    assert says in message and "\n" not in message
    assert not app.state.ready


@pytest.mark.slow
def test_vae_serve_exits_non_zero_with_a_clear_line(tmp_path):
    """The real process; the other faults take the same path (the lifespan test above)."""
    missing = tmp_path / "nope.pt"
    server = start_server({"VAE_MODEL_PATH": str(missing), "VAE_PORT": str(free_port())})
    _, stderr = server.communicate(timeout=120)
    assert server.returncode != 0
    line = f"ERROR app cannot start: model file {missing} does not exist (set VAE_MODEL_PATH)"
    assert line in stderr.splitlines()[0], stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]


@pytest.mark.parametrize("batching", [True, False])
def test_a_failing_model_call_gives_a_json_500_and_the_next_call_succeeds(
    make_client, monkeypatch, digit_png, batching
):
    client = make_client(batching=batching)
    forward = ModelService.forward
    calls = {"n": 0}

    def fail_once(self, method, x):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError(f"simulated failure in {ROOT}/model/secret.py")
        return forward(self, method, x)

    monkeypatch.setattr(ModelService, "forward", fail_once)
    before = failures(client)
    body = assert_error(client.post("/encode", content=digit_png, headers=PNG), 500)
    assert body["error"] == "internal_error" and "secret" not in body["detail"]
    assert failures(client) == before + 1
    assert client.post("/encode", content=digit_png, headers=PNG).status_code == 200
    assert client.get("/readyz").status_code == 200


def failures(client: TestClient) -> float:
    pattern = r'^vae_failures_total\{reason="internal_error"\} (\S+)$'
    match = re.search(pattern, client.get("/metrics").text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0
