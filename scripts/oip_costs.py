"""Per-request CPU cost of the Open Inference Protocol layer beside the REST path's image work.

    OMP_NUM_THREADS=1 MNIST_DIR=... python -m scripts.oip_costs

One process, one thread, timeit on CPU time (best of 5): the v2 layer's parsing, checks and response
(app/oip/tensors.py) for 1 and 64 digits sent as binary data; the REST path's PNG decoding
and MNIST preprocessing (app/imaging.py) and /encode's JSON answer for as many; the shipped
model's encoder for the same rows. No HTTP: what a request costs beyond the framework.
"""

import io
import os
import time
import timeit
from pathlib import Path

import numpy as np
import orjson
import torch
from PIL import Image

from app.contract import read_contract
from app.imaging import preprocess
from app.oip.models import catalogue
from app.oip.tensors import (
    infer_response,
    input_array,
    parse_request,
    requested_outputs,
    split_body,
)
from app.settings import SHIPPED_MODEL, Settings
from model import artifact
from model.data import load_mnist
from scripts.bench.v2 import HEADER_LENGTH, binary_infer


def best_us(f, number: int) -> float:
    # CPU time, not wall time: on a shared machine the process is often descheduled
    return min(timeit.repeat(f, timer=time.process_time, number=number, repeat=5)) / number * 1e6


def png(digit: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(digit, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    torch.set_num_threads(1)
    module, card = artifact.load(SHIPPED_MODEL)
    encoder = catalogue(read_contract(module, card))["vae-encoder"]
    settings = Settings()
    digits = load_mnist("test", Path(os.environ["MNIST_DIR"]))[0][:64]
    images = (digits.astype(np.float32) / 255)[:, None]
    for rows in (1, 64):
        body, headers = binary_infer("image", images[:rows])
        with torch.inference_mode():
            x = torch.from_numpy(images[:rows].copy())
            mu, sigma = module.encode(x)
            outputs = {"mu": mu, "sigma": sigma, "kl": module.kl_divergence(mu, sigma)}
            model = best_us(lambda x=x: module.kl_divergence(*module.encode(x)), 50)

        def v2(body=body, headers=headers, rows=rows, outputs=outputs) -> None:
            header, binary = split_body(body, headers[HEADER_LENGTH], settings)
            request = parse_request(header)
            input_array(request, encoder.input, binary, encoder.rows, settings)
            wanted = requested_outputs(request, encoder.output_names)
            infer_response({"model_name": encoder.name}, wanted, outputs)

        pngs = [png(d) for d in digits[:rows]]

        def rest(pngs=pngs, outputs=outputs) -> None:
            np.stack([preprocess(p, 16_000_000) for p in pngs])
            mu, sigma, kl = outputs["mu"], outputs["sigma"], outputs["kl"]
            answer = [
                {"mu": mu[i].numpy(), "sigma": sigma[i].numpy(), "kl": kl[i].item()}
                for i in range(len(pngs))
            ]
            orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)

        print(
            f"{rows:2} digits: v2 binary layer {best_us(v2, 200):7.0f} us, REST PNG + JSON "
            f"{best_us(rest, 20):7.0f} us, encoder model {model:7.0f} us"
        )


if __name__ == "__main__":
    main()
