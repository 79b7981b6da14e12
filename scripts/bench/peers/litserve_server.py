"""LitServe peer: one LitAPI on POST /predict, requests batched by LitServe.

    .venv-bench/litserve/bin/python -m scripts.bench.peers.litserve_server --model M --port P

LitServe registers its endpoint for POST only and hands the worker what `decode_request`'s
annotation parses, so the operation travels in headers as for TorchServe (X-Op: sample with
X-N: 16, X-Op: encode / reconstruct with the raw image as the body); a FastAPI dependency in
the API server process turns the raw request into a picklable Job. Configuration, from
LitServe's documentation (https://lightning.ai/docs/litserve/features/batching and the
LitServer / LitAPI API reference, litserve 0.2.19 docstrings):
- batching on the LitAPI: `max_batch_size`, `batch_timeout` (s), with `batch`/`unbatch`;
- `workers_per_device=1` on `accelerator="cpu"`: "for CPU, set to the number of cores";
- `fast_queue=True`: "Enable ZeroMQ for high-throughput scenarios (>100 RPS)";
- `num_api_servers=1` ("None: uses same count as inference workers (recommended)"),
  `log_level="warning"` and no client file, as in its "Production Configuration" example.
"""

import argparse
from typing import Annotated

import litserve as ls
from fastapi import Depends, Request, Response

from scripts.bench.peers.work import Answer, Job, VAEWork, request_of

MAX_BATCH_SIZE = 32  # the batch size and window the benchmark gives every peer (TorchServe too)
BATCH_TIMEOUT_S = 0.005


async def job_of(request: Request) -> Job:
    """In the API server process: headers and raw body to the Job sent to the worker."""
    op = request.headers.get("x-op", "encode")
    return request_of(f"/{op}", request.headers.get("x-n"), await request.body())


class VAELitAPI(ls.LitAPI):
    def __init__(self, model_path: str) -> None:
        super().__init__(max_batch_size=MAX_BATCH_SIZE, batch_timeout=BATCH_TIMEOUT_S)
        self.model_path = model_path

    def setup(self, device: str) -> None:
        self.work = VAEWork(self.model_path)

    def decode_request(self, request: Annotated[Job, Depends(job_of)]) -> Job:
        return request

    def batch(self, inputs: list[Job]) -> list[Job]:
        return inputs  # VAEWork batches each operation's rows itself

    def predict(self, jobs: list[Job]) -> list[Answer]:
        return self.work.run(jobs)

    def unbatch(self, output: list[Answer]) -> list[Answer]:
        return output

    def encode_response(self, output: Answer) -> Response:
        return Response(output.body, media_type=output.media_type)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True, help="TorchScript file")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    server = ls.LitServer(
        VAELitAPI(args.model), accelerator="cpu", devices=1, workers_per_device=1, fast_queue=True
    )
    server.run(
        host="127.0.0.1",
        port=args.port,
        num_api_servers=1,
        log_level="warning",
        generate_client_file=False,
    )


if __name__ == "__main__":
    main()
