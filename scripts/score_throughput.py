"""Throughput of POST /score through the real service (uvicorn, HTTP on localhost), written
into the model card's capabilities.evaluation.throughput.

    python -m scripts.score_throughput --k 100 --concurrency 8 --seconds 20

Each request is one 28x28 MNIST test digit as PNG; concurrent requests with the same k go
through the micro-batcher, and each batch decodes its k samples per image as one call.
"""

import argparse
import asyncio
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from model.data import load_mnist
from model.export import read_card, update_card
from scripts.readiness import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[1]
PNG = {"content-type": "image/png"}


def digit_pngs(n: int) -> list[bytes]:
    images, _ = load_mnist("test")
    out = []
    for array in images[:n]:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


async def load(url: str, pngs: list[bytes], k: int, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient, offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            png = pngs[i % len(pngs)]
            r = await client.post(f"{url}/score?k={k}", content=png, headers=PNG)
            if r.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
            i += concurrency

    async with httpx.AsyncClient(timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client, j) for j in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,
        "images_per_s": len(latencies) / elapsed,
        "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 1),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "model" / "vae_mnist.pt"))
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--no-card", action="store_true", help="print only; leave the card alone")
    args = p.parse_args(argv)
    port = free_port()
    env = {
        **os.environ,
        "VAE_MODEL_PATH": args.model,
        "VAE_ACCESS_LOG": "false",
        "VAE_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, server, timeout=60)
        result = asyncio.run(load(url, digit_pngs(256), args.k, args.concurrency, args.seconds))
    finally:
        server.terminate()
        server.wait(timeout=30)
    given = argv if argv is not None else sys.argv[1:]
    result |= {
        "k": args.k,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "where": "server (1 torch thread) and load generator on one 2-core machine shared "
        "with other work: a lower bound",
        "command": " ".join(["python -m scripts.score_throughput", *given]),
    }
    print(result)
    if not args.no_card:
        card = read_card(args.model)
        card["capabilities"].setdefault("evaluation", {})["throughput"] = result
        update_card(args.model, card)


if __name__ == "__main__":
    main()
