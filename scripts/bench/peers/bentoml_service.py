"""BentoML peer: an HTTP service that hands each request to a model service with adaptive batching.

    VAE_MODEL_PATH=M .venv-bench/bentoml/bin/bentoml serve \
        scripts.bench.peers.bentoml_service:VAEFront --host 127.0.0.1 --port P

BentoML 1.4 batches only calls that reach a batchable API through its dispatcher (an HTTP call,
or a call to a service it `depends` on), and its API routes are POST only; so, following its
adaptive-batching guide (https://docs.bentoml.com/en/latest/guides/adaptive-batching.html:
"for multiple Services, the Service responsible for running model inference collects requests
from the intermediary Service and forms batches"), VAEFront parses each request (POST
/sample?n=16, POST /encode and /reconstruct with the raw image as the body) and calls
VAEModel.run with a batch of one; VAEModel's dispatcher merges those calls. Configuration:
- `@bentoml.api(batchable=True, max_batch_size=32)`, `max_latency_ms` at BentoML's default
  (60 s: the dispatcher may wait as long as its latency model says a batch is worth it);
- `workers=1` per service (https://docs.bentoml.com/en/latest/guides/workers.html: one process
  per worker; one core here);
- `traffic={"concurrency": 32}` on the model service: "if your Service supports adaptive
  batching ... set concurrency to match the batch size"
  (https://docs.bentoml.com/en/latest/guides/concurrency.html).
"""

import os

import bentoml
from starlette.responses import Response

from scripts.bench.peers.work import Answer, Job, VAEWork, request_of

MAX_BATCH_SIZE = 32  # the batch size the benchmark gives every peer (TorchServe too)


@bentoml.service(workers=1, traffic={"concurrency": MAX_BATCH_SIZE})
class VAEModel:
    def __init__(self) -> None:
        self.work = VAEWork(os.environ["VAE_MODEL_PATH"])

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE)
    def run(self, jobs: list[Job]) -> list[Answer]:
        return self.work.run(jobs)


@bentoml.service(workers=1)
class VAEFront:
    model = bentoml.depends(VAEModel)

    async def answer(self, job: Job) -> Response:
        (answer,) = await self.model.to_async.run([job])
        return Response(answer.body, media_type=answer.media_type)

    @bentoml.api(route="/sample")
    async def sample(self, ctx: bentoml.Context):  # a Response: no output schema
        return await self.answer(request_of("/sample", ctx.request.query_params.get("n"), b""))

    @bentoml.api(route="/encode")
    async def encode(self, body: bytes, /):
        return await self.answer(request_of("/encode", None, body))

    @bentoml.api(route="/reconstruct")
    async def reconstruct(self, body: bytes, /):
        return await self.answer(request_of("/reconstruct", None, body))
