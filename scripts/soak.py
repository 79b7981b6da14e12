"""Soak test: minutes of mixed traffic (every endpoint, some bad requests) against the service.

    python scripts/soak.py --minutes 10 --concurrency 8 --model tiny   # starts vae-serve itself
    python scripts/soak.py --url http://127.0.0.1:8000 --minutes 2     # an already running server

Every request has the statuses it may get; anything else (or a transport error) is an
unexpected error. Prints requests served, statuses, unexpected errors, p99 latency per
minute and, for a server it started, the server's RSS after warm-up and at the end.
Exits 1 when there were unexpected errors.
"""

import argparse
import asyncio
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw

try:
    from scripts.readiness import free_port, wait_ready
except ModuleNotFoundError:  # run as a file (python scripts/soak.py): scripts/ is on the path
    from readiness import free_port, wait_ready

SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "model" / "vae_mnist.pt"


def tiny_model(folder: Path) -> Path:
    """A tiny untrained VAE (latent 4), exported as the shipped one is (as tests/conftest.py)."""
    import torch

    from model.export import build_card, export
    from model.vae import VAE, VAEConfig

    torch.manual_seed(0)
    arch = {"arch": "mlp", "latent_dim": 4, "hidden": [16], "channels": [32], "conv_hidden": 64}
    card = build_card(arch, {"config": {"iw_samples": 1, "epochs": 0}}, {}, "0.0.1-soak")
    return export(VAE(VAEConfig(arch="mlp", latent_dim=4, hidden=[16])), card, folder / "tiny.pt")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def start_server(model: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "VAE_MODEL_PATH": str(model),
        "VAE_PORT": str(port),
        "VAE_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.Popen(["vae-serve"], env=env, stdout=subprocess.DEVNULL)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def digit_png(rng: random.Random) -> bytes:
    """A dark stroke on light paper, at a random size (preprocessing has work to do)."""
    side = rng.choice([28, 64, 200])
    image = Image.new("L", (side, side), 255)
    box = [side * rng.uniform(0.1, 0.4), side * 0.1, side * rng.uniform(0.6, 0.9), side * 0.9]
    ImageDraw.Draw(image).ellipse(box, outline=0, width=max(1, side // 10))
    return png(image)


def requests_for(latent: int, rng: random.Random) -> list[tuple[int, str, str, dict, set[int]]]:
    """(weight, method, path, httpx kwargs, statuses allowed) for one round of traffic."""
    z = [round(rng.gauss(0, 1), 3) for _ in range(latent)]
    image = digit_png(rng)
    two = [
        ("file", ("a.png", image, "image/png")),
        ("file", ("b.png", digit_png(rng), "image/png")),
    ]
    ok = {200}
    # The photo reader (app/digits.py) finds no digit (422 no_digit) in some of these strokes,
    # ~1 in 5 at 64 px: refused cleanly, so expected here until the reader accepts them.
    upload = {200, 422}
    raw = {"content": image, "headers": {"content-type": "image/png"}}
    return [
        (6, "POST", "/encode", raw, upload),
        (2, "POST", "/encode", {"files": two}, upload),
        (4, "POST", "/decode", {"json": {"z": [z, z]}}, ok),
        (2, "POST", "/decode?format=json", {"json": {"z": z}}, ok),
        (4, "GET", f"/sample?n={rng.randint(1, 16)}&seed={rng.randint(0, 9)}", {}, ok),
        (1, "GET", "/sample?n=4&format=json&scale=2", {}, ok),
        (3, "POST", "/reconstruct", {"files": two[:1]}, upload),
        (2, "POST", "/interpolate?steps=5", {"json": {"z_start": z, "z_end": z[::-1]}}, ok),
        (1, "POST", "/interpolate?format=json", {"files": two}, upload),
        (1, "GET", "/model", {}, ok),
        (1, "GET", "/healthz", {}, ok),
        (1, "GET", "/readyz", {}, ok),
        (1, "GET", "/metrics", {}, ok),
        (
            1,
            "POST",
            "/encode",
            {"content": b"\x89PNG junk", "headers": {"content-type": "image/png"}},
            {400},
        ),
        (
            1,
            "POST",
            "/encode",
            {"content": b"hello", "headers": {"content-type": "text/plain"}},
            {415},
        ),
        (1, "GET", "/sample?n=0", {}, {422}),
        (1, "POST", "/decode", {"json": {"z": [1.0] * (latent + 1)}}, {422}),
        (1, "GET", "/no-such-route", {}, {404}),
    ]


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.latencies: defaultdict[int, list[float]] = defaultdict(list)


async def worker(
    client: httpx.AsyncClient, latent: int, seed: int, started: float, stop: float, tally: Tally
) -> None:
    rng = random.Random(seed)
    while (t0 := time.monotonic()) < stop:
        plan = requests_for(latent, rng)
        _, method, path, kwargs, allowed = rng.choices(plan, weights=[p[0] for p in plan])[0]
        try:
            response = await client.request(method, path, **kwargs)
            status = str(response.status_code)
            if response.status_code not in allowed:
                tally.unexpected.append(f"{method} {path} -> {status}: {response.text[:200]}")
        except httpx.HTTPError as e:
            status = type(e).__name__
            tally.unexpected.append(f"{method} {path} -> {status}: {e}")
        tally.statuses[status] += 1
        tally.latencies[int((t0 - started) // 60)].append(time.monotonic() - t0)


async def soak(url: str, minutes: float, concurrency: int) -> Tally:
    tally = Tally()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        latent = (await client.get("/model")).json()["latent_dim"]
        started = time.monotonic()
        stop = started + minutes * 60
        await asyncio.gather(
            *(worker(client, latent, i, started, stop, tally) for i in range(concurrency))
        )
    return tally


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--url", help="a running server; default: start vae-serve on a free port")
    p.add_argument(
        "--model",
        default=str(SHIPPED_MODEL),
        help="model file for the server, or 'tiny' for a tiny untrained one (default: %(default)s)",
    )
    p.add_argument(
        "--warmup-s",
        type=float,
        default=30.0,
        help="traffic before the starting RSS is taken (default: %(default)s)",
    )
    args = p.parse_args(argv)

    server = None
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url
        if url is None:
            model = tiny_model(Path(tmp)) if args.model == "tiny" else Path(args.model)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            server = start_server(model, port)
        try:
            wait_ready(url, server)
            rss_ready = rss_bytes(server.pid) if server else None
            asyncio.run(soak(url, args.warmup_s / 60, args.concurrency))
            rss_start = rss_bytes(server.pid) if server else None
            tally = asyncio.run(soak(url, args.minutes, args.concurrency))
            rss_end = rss_bytes(server.pid) if server else None
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=60)

    total = sum(tally.statuses.values())
    p99 = {
        m + 1: round(float(np.percentile(v, 99)) * 1000, 1)
        for m, v in sorted(tally.latencies.items())
    }
    report = {
        "url": url,
        "model": args.model if args.url is None else "(remote)",
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "requests": total,
        "requests_per_s": round(total / (args.minutes * 60), 1),
        "statuses": dict(sorted(tally.statuses.items())),
        "unexpected_errors": len(tally.unexpected),
        "unexpected_examples": tally.unexpected[:10],
        "p99_ms_per_minute": p99,
    }
    if server is not None:
        report |= {
            "rss_mb_ready": round(rss_ready / 2**20, 1),
            "rss_mb_start": round(rss_start / 2**20, 1),
            "rss_mb_end": round(rss_end / 2**20, 1),
            "rss_growth_pct": round(100 * (rss_end - rss_start) / rss_start, 2),
            "server_exit_code": server.returncode,
        }
    print(json.dumps(report, indent=2))
    sys.exit(1 if tally.unexpected else 0)


if __name__ == "__main__":
    main()
