"""Start-up, readiness and metrics: a bad model never gives a half-working server."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.inference import SERVED_METHODS, ModelLoadError, ModelService
from app.main import create_app
from app.settings import Settings
from model import artifact
from model.export import REQUIRED_METHODS as EXPORTED_METHODS
from tests.helpers import free_port


def test_service_requires_only_what_export_provides():
    assert set(SERVED_METHODS) <= set(EXPORTED_METHODS)


def test_not_ready_before_startup_and_api_refuses(tiny_model_file):
    client = TestClient(create_app(Settings(model_path=tiny_model_file)))  # lifespan not run
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json() == {"status": "not_ready"}
    r = client.get("/sample?n=1")
    assert r.status_code == 503 and r.json()["error"] == "not_ready"
    assert client.get("/healthz").status_code == 200


def test_ready_after_startup_then_not_after_shutdown(tiny_model_file):
    app = create_app(Settings(model_path=tiny_model_file, log_format="text"))
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
    assert app.state.ready is False and app.state.draining is True


class OnlyEncode(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x


@pytest.fixture
def bad_models(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 definitely not torchscript")
    partial = tmp_path / "partial.pt"
    artifact.save(artifact.script(OnlyEncode()), partial)
    return {
        "missing": (tmp_path / "nope.pt", "does not exist"),
        "corrupt": (corrupt, "not a TorchScript archive"),
        "partial": (partial, "lacks the required methods"),
    }


@pytest.mark.parametrize("case", ["missing", "corrupt", "partial"])
def test_bad_model_file_fails_with_a_clear_message(bad_models, case):
    path, message = bad_models[case]
    with pytest.raises(ModelLoadError, match=message):
        ModelService.load(Settings(model_path=path))


def test_cuda_requested_without_cuda_fails(tiny_model_file):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelLoadError, match="CUDA is not available"):
        ModelService.load(Settings(model_path=tiny_model_file, device="cuda"))


def test_server_process_exits_nonzero_with_one_clear_line(bad_models):
    path, message = bad_models["corrupt"]
    env = {"VAE_MODEL_PATH": str(path), "VAE_PORT": str(free_port()), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "cannot start" in line]
    assert len(lines) == 1 and message in lines[0]


def test_metrics_show_the_expected_series(client, digit_png):
    client.get("/sample?n=3")
    client.post("/encode", files={"file": ("d.png", digit_png, "image/png")})
    client.get("/sample?n=0")
    text = client.get("/metrics").text
    for series in (
        'vae_http_requests_total{method="GET",protocol="rest",route="/sample",status="200"}',
        'vae_http_requests_total{method="GET",protocol="rest",route="/sample",status="422"}',
        'vae_http_request_duration_seconds_bucket{le="0.005",method="POST",protocol="rest",route="/encode"',
        'vae_inference_duration_seconds_count{operation="decode"}',
        'vae_batch_size_bucket{le="4.0",operation="decode"}',
        "vae_queue_depth ",
        "vae_requests_in_flight ",
        "vae_images_encoded_total ",
        "vae_images_decoded_total ",
        'vae_failures_total{reason="invalid_parameters"}',
        'vae_model_info{device="cpu",latent_dim="4",precision="float32",version="0.0.1-test"} 1.0',
    ):
        assert series in text, series


def test_unmatched_routes_share_one_label(client):
    client.get("/random/path/1")
    client.get("/random/path/2")
    text = client.get("/metrics").text
    assert 'route="<unmatched>"' in text and "/random/path" not in text


def route_counts(client, route: str) -> dict[tuple[str, str], float]:
    """{(method, status): count} of vae_http_requests_total for one route label."""
    counts = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == "vae_http_requests_total" and s.labels["route"] == route:
                counts[s.labels["method"], s.labels["status"]] = s.value
    return counts


def test_a_body_refused_by_the_middleware_counts_under_its_route(make_client):
    client = make_client(max_upload_bytes=2048)
    before = route_counts(client, "/encode").get(("POST", "413"), 0)
    r = client.post("/encode", content=b"\0" * 5000, headers={"content-type": "image/png"})
    assert r.status_code == 413
    assert route_counts(client, "/encode")[("POST", "413")] == before + 1


@pytest.mark.parametrize(
    ("path", "route"),
    [("/docs", "/docs"), ("/openapi.json", "/openapi.json"), ("/static/app.js", "/static")],
)
def test_docs_and_static_files_count_under_their_route(client, path, route):
    assert client.get(path).status_code == 200
    assert route_counts(client, route)[("GET", "200")] >= 1


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/"])
def test_head_is_allowed_where_probes_use_it(client, path):
    r = client.head(path)
    assert r.status_code == 200
    assert r.content == b""
