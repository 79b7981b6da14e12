"""How each system is started, probed for readiness, and addressed per workload.

TorchServe gets a model archive of the same TorchScript file with torchserve_handler.py,
one backend worker, batchSize 32 and maxBatchDelay 5 ms (see TORCHSERVE_MODEL).
"""

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from scripts.bench import procs
from scripts.bench.config import System, Workload

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TORCHSERVE_MODEL = {
    "minWorkers": 1,
    "maxWorkers": 1,
    "batchSize": 32,  # requests per handler call
    "maxBatchDelay": 5,  # ms to wait for a batch to fill
    "responseTimeout": 120,
}


@dataclass
class Running:
    system: System
    server: procs.Server
    probe: str  # GET path that answers 200 once the model is served
    probe_headers: dict[str, str] = field(default_factory=dict)

    def request(self, workload: Workload) -> tuple[str, dict[str, str]]:
        """URL and extra headers of `workload` on this system."""
        if self.system.kind != "torchserve":
            return self.server.base_url + workload.path, {}
        return f"{self.server.base_url}/predictions/vae", torchserve_headers(workload)


def torchserve_headers(workload: Workload) -> dict[str, str]:
    """TorchServe passes no query string to handlers: the operation goes in headers."""
    route, _, query = workload.path.partition("?")
    headers = {"X-Op": route.strip("/")}
    if query.startswith("n="):
        headers["X-N"] = query[2:]
    return headers


def executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not on PATH")
    return path


def torchserve_files(model: Path, workdir: Path, ports: tuple[int, int, int]) -> Path:
    """Model store with vae.mar, plus config.properties; returns the config path."""
    store = workdir / "model-store"
    store.mkdir(parents=True, exist_ok=True)
    if not (store / "vae.mar").exists():
        subprocess.run(
            [
                executable("torch-model-archiver"),
                *("--model-name", "vae", "--version", "1.0", "--serialized-file", str(model)),
                *("--handler", str(HERE / "torchserve_handler.py")),
                *("--export-path", str(store), "--force"),
            ],
            check=True,
            capture_output=True,
        )
    inference, management, metrics = ports
    models = {"vae": {"1.0": {"defaultVersion": True, "marName": "vae.mar", **TORCHSERVE_MODEL}}}
    config = workdir / "config.properties"
    config.write_text(
        "\n".join(
            [
                f"inference_address=http://127.0.0.1:{inference}",
                f"management_address=http://127.0.0.1:{management}",
                f"metrics_address=http://127.0.0.1:{metrics}",
                f"model_store={store}",
                "load_models=vae.mar",
                f"models={json.dumps(models)}",
                "default_workers_per_model=1",
                "job_queue_size=1000",
                "disable_token_authorization=true",
                "install_py_dep_per_model=false",
                "",
            ]
        )
    )
    return config


def launch(system: System, model: Path, workdir: Path, cpus: str | None) -> Running:
    """Start `system` serving `model` (not waiting for readiness); logs go under `workdir`."""
    port = procs.free_port()
    base = f"http://127.0.0.1:{port}"
    log = workdir / f"{system.name}.log"
    env = {"VAE_MODEL_PATH": str(model)}
    if system.kind == "vae-serve":
        command = [executable("vae-serve"), "--port", str(port)]
        server = procs.start(procs.pinned(command, cpus), {**env, **system.env}, base, log)
        return Running(system, server, "/readyz")
    if system.kind == "naive":
        command = [sys.executable, "-m", "uvicorn", "scripts.bench.naive_app:app"]
        command += ["--host", "127.0.0.1", "--port", str(port)]
        server = procs.start(procs.pinned(command, cpus), env, base, log, cwd=ROOT)
        return Running(system, server, "/readyz")
    tsdir = workdir / "torchserve"
    config = torchserve_files(model, tsdir, (port, procs.free_port(), procs.free_port()))
    command = [executable("torchserve"), "--start", "--foreground", "--ncs"]
    command += ["--disable-token-auth", "--ts-config", str(config)]
    # TMPDIR: its pid file (a second TorchServe refuses to start while one is listed there)
    env = {"TMPDIR": str(tsdir)}
    server = procs.start(procs.pinned(command, cpus), env, base, log, cwd=tsdir)
    # /ping turns healthy before the worker has served anything: probe a real prediction
    return Running(system, server, "/predictions/vae", {"X-Op": "sample", "X-N": "1"})
