"""TorchServe handler for the VAE: the work of every peer (scripts/bench/peers/work.py).

Requests go to /predictions/vae, which passes no query string to handlers, so the operation
is in headers: X-Op: sample with X-N: 16 -> PNG grid of n samples; X-Op: encode with a raw
image body -> JSON {mu, sigma, latent_dim, kl}; X-Op: reconstruct -> PNG. One TorchServe
batch may mix ops: each op's rows run as one model call. Preprocessing and PNG encoding are
app.imaging's, as in vae-serve. The backend imports the working tree (PYTHONPATH, set by
servers.launch_torchserve).
"""

import os

from scripts.bench.peers.work import Job, VAEWork, request_of


def header(context, idx: int, name: str) -> str | None:
    value = context.get_request_header(idx, name)
    return value.decode() if isinstance(value, bytes | bytearray) else value


class VAEHandler:
    def initialize(self, context) -> None:
        model_dir = context.system_properties["model_dir"]
        self.work = VAEWork(os.path.join(model_dir, context.manifest["model"]["serializedFile"]))

    @staticmethod
    def job(data: list[dict], context, i: int) -> Job:
        body = data[i].get("body") or data[i].get("data") or b""
        op = header(context, i, "X-Op") or "encode"
        return request_of(f"/{op}", header(context, i, "X-N"), bytes(body))

    def handle(self, data: list[dict], context) -> list[bytes]:
        answers = self.work.run([self.job(data, context, i) for i in range(len(data))])
        for i, answer in enumerate(answers):
            context.set_response_content_type(i, answer.media_type)
        return [answer.body for answer in answers]
