"""Ray Serve peer: one deployment whose `@serve.batch` method runs the VAE, behind Serve's proxy.

    .venv-bench/ray/bin/python -m scripts.bench.peers.ray_serve_app --model M --port P

Starts a one-node Ray cluster with `ray start --head --block` on 127.0.0.1 (its child, so the
benchmark's process tree holds every Ray process), deploys VAEDeployment with Serve's HTTP
proxy on 127.0.0.1:P, and on SIGTERM shuts Serve down and stops the cluster. Requests are
vae-serve's own: GET /sample?n=16, POST /encode and /reconstruct with the raw image.
Configuration, from Ray Serve's documentation:
- `@serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)`
  (https://docs.ray.io/en/latest/serve/advanced-guides/dyn-req-batch.html);
- `max_ongoing_requests` >= `max_batch_size` (Serve's default of 5 would cap every batch at 5;
  ray.serve.batching warns "update `max_ongoing_requests` to be >= `max_batch_size`"): 2x it, so
  one batch can fill while another runs;
- one replica with `num_cpus: 1` on a node of `--num-cpus 1`: the one core
  (https://docs.ray.io/en/latest/serve/advanced-guides/performance.html, "reserving one or
  more cores for your deployment replicas using ray_actor_options");
- `RAY_SERVE_THROUGHPUT_OPTIMIZED=1` (below);
- no dashboard, no usage stats.
Every Ray listener is on 127.0.0.1 (checked with `ss -ltnp`) but one: Ray 2.60 binds each
replica's inter-deployment gRPC server to [::]:0 in code (ray/serve/_private/replica.py), with
no setting to change it; nothing sends to it here (one deployment, no handle calls).
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

# Ray's single-machine mode (its default on macOS and Windows), set before ray is imported:
# the node's address stays 127.0.0.1, where on Linux Ray replaces a loopback address with the
# machine's own (ray._private.services.resolve_ip_for_localhost) and binds services there
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# Serve's throughput-optimized mode, which Ray documents for high throughput (Ray >= 2.55:
# https://docs.ray.io/en/master/cluster/kubernetes/user-guides/kuberay-serve-high-throughput.html;
# its other half, RAY_SERVE_ENABLE_HA_PROXY, needs an haproxy binary and binds every
# interface). RAY_SERVE_THROUGHPUT_OPTIMIZED=0 in the environment measures the default mode.
os.environ.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")

import ray  # noqa: E402
from ray import serve  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

from scripts.bench.peers.work import Answer, Job, VAEWork, request_of  # noqa: E402

# standard library only, so it imports in Ray's own virtual environment too
from scripts.readiness import free_port  # noqa: E402

HOST = "127.0.0.1"
MAX_BATCH_SIZE = 32  # the batch size and window the benchmark gives every peer (TorchServe too)
BATCH_WAIT_S = 0.005


@serve.deployment(
    num_replicas=1,
    max_ongoing_requests=2 * MAX_BATCH_SIZE,
    ray_actor_options={"num_cpus": 1},
)
class VAEDeployment:
    def __init__(self, model_path: str) -> None:
        self.work = VAEWork(model_path)

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def run(self, jobs: list[Job]) -> list[Answer]:
        return self.work.run(jobs)

    async def __call__(self, request: Request) -> Response:
        job = request_of(request.url.path, request.query_params.get("n"), await request.body())
        answer = await self.run(job)
        return Response(answer.body, media_type=answer.media_type)


def ray_start_command(gcs_port: int) -> list[str]:
    """`ray start --head` on loopback only, one CPU, in the foreground (--block)."""
    ray = str(Path(sys.executable).with_name("ray"))
    return [
        ray, "start", "--head", "--block", "--disable-usage-stats",
        f"--node-ip-address={HOST}", f"--port={gcs_port}", "--num-cpus=1",
        "--include-dashboard=false", f"--dashboard-host={HOST}",
        f"--ray-client-server-port={free_port()}",
    ]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True, help="TorchScript file")
    p.add_argument("--port", type=int, required=True, help="Serve's HTTP proxy port")
    args = p.parse_args()
    gcs_port = free_port()
    cluster = subprocess.Popen(ray_start_command(gcs_port))  # inherits the single-machine mode
    stop = threading.Event()
    try:
        for _ in range(600):  # the GCS takes a few seconds to come up
            try:
                ray.init(
                    address=f"{HOST}:{gcs_port}", _node_ip_address=HOST, logging_level="warning"
                )
                break
            except ConnectionError:
                time.sleep(0.1)
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # after ray.init, which sets its own
        serve.start(http_options={"host": HOST, "port": args.port})
        serve.run(VAEDeployment.bind(args.model), blocking=False)
        while not stop.wait(0.5):  # a plain wait() may not wake for the signal handler
            pass
        serve.shutdown()
    finally:
        cluster.terminate()
        cluster.wait(timeout=30)


if __name__ == "__main__":
    main()
