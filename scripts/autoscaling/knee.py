"""Where p99 starts to rise: one local replica under closed-loop load stepped in concurrency.

    python -m scripts.autoscaling.knee [--steps 1,2,4,8,16,32,64] [--seconds 8]

For each step, wrk keeps c /encode requests (a 28x28 PNG) in flight for --seconds against
one `python -m app.cli` on 127.0.0.1 (1 torch thread, like one CPU pod), while a sampler
reads the replica's /metrics every 0.2 s. Prints c, throughput, p50/p99 and the mean
requests in flight and queue depth the replica reported: the autoscaling target is the
in-flight value of the last step before p99 grows faster than the queue (docs/deploy.md,
"Autoscaling"). Bounded: len(steps) x seconds of load, loopback only.
"""

import argparse
import json
import tempfile
from pathlib import Path

from scripts.autoscaling.common import Sampler, digit_png, replica
from scripts.bench.loadgen import run_wrk


def step(url: str, body: Path, c: int, seconds: int) -> dict:
    sampler = Sampler(url)
    sampler.start()
    result = run_wrk(
        url + "/encode", "POST", {"Content-Type": "image/png"}, body, c, seconds, 10, None
    )
    means = sampler.stop()
    return {
        "c": c,
        "rps": result["rps"],
        "errors": result["errors"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "in_flight": round(means["vae_requests_in_flight"], 1),
        "queue_depth": round(means["vae_queue_depth"], 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", default="1,2,4,8,16,32,64", help="default: %(default)s")
    p.add_argument("--seconds", type=int, default=8, help="per step; default: %(default)s")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args()
    steps = [int(c) for c in args.steps.split(",")]
    assert all(1 <= c <= 128 for c in steps) and 1 <= args.seconds <= 30, "bounded load only"
    with tempfile.TemporaryDirectory(prefix="knee-") as tmp, replica(Path(tmp), "r0") as url:
        body = digit_png(Path(tmp))
        run_wrk(url + "/encode", "POST", {"Content-Type": "image/png"}, body, 4, 2, 10, None)
        rows = []
        print(f"{'c':>4} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'in flight':>9} {'queue':>6}")
        for c in steps:
            r = step(url, body, c, args.seconds)
            rows.append(r)
            print(
                f"{r['c']:>4} {r['rps']:>7} {r['p50_ms']:>7} {r['p99_ms']:>7} "
                f"{r['in_flight']:>9} {r['queue_depth']:>6}  errors {r['errors']}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
