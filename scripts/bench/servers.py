"""How each system is started, probed for readiness, and addressed per workload.

TorchServe gets a model archive of the same TorchScript file with torchserve_handler.py,
one backend worker, batchSize 32 and maxBatchDelay 5 ms (see TORCHSERVE_MODEL). The peers
(LitServe, BentoML, Ray Serve) run scripts/bench/peers/* with the Python of their own
virtual environment, .venv-bench/<peer> (scripts/bench/setup_peers.sh makes them).
"""

import importlib.metadata
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
PEER_VENVS = ROOT / ".venv-bench"
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

    def request(self, workload: Workload) -> tuple[str, str, dict[str, str]]:
        """Method, URL and extra headers of `workload` on this system."""
        kind, base = self.system.kind, self.server.base_url
        if kind == "torchserve":
            return workload.method, f"{base}/predictions/vae", torchserve_headers(workload)
        if kind == "litserve":  # one POST endpoint, the operation in headers as for TorchServe
            return "POST", f"{base}/predict", torchserve_headers(workload)
        if kind == "bentoml":  # BentoML routes are POST only; same paths and query
            return "POST", base + workload.path, {}
        return workload.method, base + workload.path, {}


def torchserve_headers(workload: Workload) -> dict[str, str]:
    """TorchServe passes no query string to handlers: the operation goes in headers."""
    route, _, query = workload.path.partition("?")
    headers = {"X-Op": route.strip("/")}
    if query.startswith("n="):
        headers["X-N"] = query[2:]
    return headers


def executable(name: str) -> str:
    """`name` beside the running Python (its venv's bin), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    path = str(beside) if beside.exists() else shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not on PATH")
    return path


def versions() -> dict[str, str]:
    """The serving stacks' versions as installed: this venv's, and each peer venv's."""
    found = {}
    for package in ("uvicorn", "granian", "torchserve"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    for venv, package in (("litserve", "litserve"), ("bentoml", "bentoml"), ("ray", "ray")):
        dists = sorted((PEER_VENVS / venv).glob(f"lib/python*/site-packages/{package}-*.dist-info"))
        found[package] = (
            dists[0].name.removesuffix(".dist-info").split("-")[1] if dists else "not installed"
        )
    return found


def peer_tool(peer: str, name: str = "python") -> str:
    """`name` in the peer's own virtual environment."""
    path = PEER_VENVS / peer / "bin" / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run bash scripts/bench/setup_peers.sh {peer}")
    return str(path)


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
    if system.kind == "torchserve":
        return launch_torchserve(system, model, workdir, cpus, port, log)
    command, probe = server_command(system.kind, model, port)
    # PYTHONPATH: every system serves this checkout's app/ (vae-serve's console script would
    # otherwise import wherever the project is installed from)
    env = {"VAE_MODEL_PATH": str(model), "PYTHONPATH": str(ROOT)}
    if system.kind == "bentoml":  # its home (models, bentos) in the run's folder; no telemetry
        env |= {"BENTOML_HOME": str(workdir / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    server = procs.start(procs.pinned(command, cpus), {**env, **system.env}, base, log, cwd=ROOT)
    return Running(system, server, probe)


def server_command(kind: str, model: Path, port: int) -> tuple[list[str], str]:
    """The command line of a system (all but TorchServe), and the GET path of its readiness."""
    at = ["--host", "127.0.0.1", "--port", str(port)]
    if kind == "vae-serve":
        return [executable("vae-serve"), "--port", str(port)], "/readyz"
    # Granian: one worker for the one core and its own thread and backpressure defaults, as its
    # README advises ("Workers and threads", "Backpressure": the defaults suit ASGI apps; do
    # not carry over numbers tuned for other servers); uvloop, as Granian picks when installed
    if kind == "granian":
        asgi = ["--interface", "asgi", "--workers", "1", "--loop", "uvloop"]
        return [executable("granian"), *asgi, *at, "app.main:app"], "/readyz"
    if kind == "naive":
        return [sys.executable, "-m", "uvicorn", "scripts.bench.naive_app:app", *at], "/readyz"
    if kind == "litserve":
        module = ["-m", "scripts.bench.peers.litserve_server", "--model", str(model)]
        return [peer_tool("litserve"), *module, "--port", str(port)], "/health"
    if kind == "bentoml":
        service = "scripts.bench.peers.bentoml_service:VAEFront"
        return [peer_tool("bentoml", "bentoml"), "serve", service, *at], "/readyz"
    if kind == "ray":  # Serve's proxy answers before the replica is up: probe a real request
        module = ["-m", "scripts.bench.peers.ray_serve_app", "--model", str(model)]
        return [peer_tool("ray"), *module, "--port", str(port)], "/sample?n=1"
    raise ValueError(f"unknown kind {kind}")


def launch_torchserve(
    system: System, model: Path, workdir: Path, cpus: str | None, port: int, log: Path
) -> Running:
    base = f"http://127.0.0.1:{port}"
    tsdir = workdir / "torchserve"
    config = torchserve_files(model, tsdir, (port, procs.free_port(), procs.free_port()))
    command = [executable("torchserve"), "--start", "--foreground", "--ncs"]
    command += ["--disable-token-auth", "--ts-config", str(config)]
    # TMPDIR: its pid file (a second TorchServe refuses to start while one is listed there);
    # PYTHONPATH: the handler imports scripts.bench.peers.work from the working tree
    env = {"TMPDIR": str(tsdir), "PYTHONPATH": str(ROOT)}
    server = procs.start(procs.pinned(command, cpus), env, base, log, cwd=tsdir)
    # /ping turns healthy before the worker has served anything: probe a real prediction
    return Running(system, server, "/predictions/vae", {"X-Op": "sample", "X-N": "1"})
