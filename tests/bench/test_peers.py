"""The benchmark's peers: their shared work, their configuration, and Granian serving the app.

The work module runs in the project venv (it needs only torch and app.imaging). Each peer's
own module is checked in its own venv (.venv-bench/<peer>, scripts/bench/setup_peers.sh),
skipped where that venv is missing: starting LitServe, BentoML or Ray Serve takes 10-40 s,
so their end-to-end check is `python -m scripts.bench --quick --systems <peer>` by hand.
"""

import io
import json
import subprocess
from pathlib import Path

import httpx
import pytest
from PIL import Image

from scripts.bench import procs, servers
from scripts.bench.config import SYSTEMS, WORKLOADS
from scripts.bench.peers.work import Job, VAEWork, request_of

ROOT = Path(__file__).resolve().parents[2]


def test_a_mixed_batch_is_answered_in_order(tiny_model_file: Path, digit_png: bytes) -> None:
    work = VAEWork(str(tiny_model_file))
    jobs = [Job("encode", body=digit_png), Job("sample", 16), Job("reconstruct", body=digit_png),
            Job("sample", 1), Job("encode", body=digit_png)]  # fmt: skip
    answers = work.run(jobs)
    kinds = ["application/json", "image/png", "image/png", "image/png", "application/json"]
    assert [a.media_type for a in answers] == kinds
    first, last = json.loads(answers[0].body), json.loads(answers[4].body)
    assert first["latent_dim"] == 4 and len(first["mu"]) == 4 and first["kl"] >= 0
    assert first["mu"] == pytest.approx(last["mu"], abs=1e-5)  # same image, same batch
    sizes = [Image.open(io.BytesIO(answers[i].body)).size for i in (1, 2, 3)]
    assert sizes[0] > sizes[2] == (28, 28) == sizes[1]  # a grid of 16; one image; one image


def test_requests_map_to_jobs() -> None:
    assert request_of("/sample", "16", b"") == Job("sample", 16)
    assert request_of("/sample", None, b"") == Job("sample", 16)  # vae-serve's default n
    assert request_of("/encode", None, b"png") == Job("encode", 1, b"png")
    with pytest.raises(ValueError, match="unknown operation"):
        request_of("/predict", None, b"")


@pytest.mark.parametrize("kind", ["litserve", "bentoml", "ray"])
def test_every_workload_is_addressed_on_loopback(kind: str) -> None:
    system = next(s for s in SYSTEMS if s.kind == kind)
    server = procs.Server(None, "http://127.0.0.1:1", Path("log"), 0.0)  # type: ignore[arg-type]
    running = servers.Running(system, server, "/")
    for workload in (w for w in WORKLOADS if not w.vae_serve_only):
        method, url, headers = running.request(workload)
        assert url.startswith("http://127.0.0.1:1/")
        if kind == "litserve":  # one POST endpoint, the operation in headers
            assert (method, url) == ("POST", "http://127.0.0.1:1/predict")
            assert headers["X-Op"] == workload.path.split("?")[0].strip("/")
        else:
            assert url.endswith(workload.path) and not headers
            assert method == ("POST" if kind == "bentoml" else workload.method)


CHECKS = {  # run with the peer venv's Python: its module imports and is configured as documented
    "litserve": """
from scripts.bench.peers.litserve_server import VAELitAPI
api = VAELitAPI("model.pt")
assert (api.max_batch_size, api.batch_timeout) == (32, 0.005), vars(api)
""",
    "bentoml": """
from scripts.bench.peers.bentoml_service import VAEFront, VAEModel
run = VAEModel.apis["run"]
assert run.batchable and run.max_batch_size == 32, run
assert VAEModel.config["workers"] == 1 and VAEModel.config["traffic"]["concurrency"] == 32
assert VAEFront.config["workers"] == 1
assert set(VAEFront.apis) == {"sample", "encode", "reconstruct"}, VAEFront.apis
""",
    "ray": """
import os
from scripts.bench.peers.ray_serve_app import VAEDeployment, ray_start_command
assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"  # loopback only
assert os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
config = VAEDeployment._deployment_config
assert config.num_replicas == 1 and config.max_ongoing_requests >= 32, config
assert VAEDeployment.ray_actor_options["num_cpus"] == 1
command = ray_start_command(6379)
assert "--node-ip-address=127.0.0.1" in command and "--num-cpus=1" in command, command
assert "--include-dashboard=false" in command and "--disable-usage-stats" in command
""",
}


@pytest.mark.parametrize("peer", sorted(CHECKS))
def test_peer_module_imports_in_its_venv_and_is_configured(peer: str) -> None:
    python = servers.PEER_VENVS / peer / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no {python}: bash scripts/bench/setup_peers.sh {peer}")
    done = subprocess.run(
        [str(python), "-c", CHECKS[peer]], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_granian_serves_the_app(tiny_model_file: Path, digit_png: bytes, tmp_path: Path) -> None:
    port = procs.free_port()
    command, probe = servers.server_command("granian", tiny_model_file, port)
    server = procs.start(
        command, {"VAE_MODEL_PATH": str(tiny_model_file), "PYTHONPATH": str(ROOT)},
        f"http://127.0.0.1:{port}",
        tmp_path / "granian.log", cwd=ROOT,
    )  # fmt: skip
    try:
        assert procs.wait_ready(server, probe, 60) > 0
        response = httpx.post(
            f"{server.base_url}/encode", content=digit_png, headers={"Content-Type": "image/png"}
        )
        assert response.status_code == 200
        assert len(response.json()["mu"]) == 4
    finally:
        server.stop()
    assert server.process.returncode is not None
