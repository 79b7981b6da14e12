"""Preprocessing time of a 640x480 JPEG photo (or, with --mnist, of a 28x28 PNG test
digit): this tree's app.imaging against an earlier commit's, in the same run, interleaved,
on the same images.

    OMP_NUM_THREADS=1 MNIST_DIR=../shared/data/mnist python -m scripts.photos.timing \\
        --before fb5854d --photos 40 --rounds 5 [--mnist]

The earlier app/imaging.py is read with `git show` and imported as a module of its own.
Reported: the median over photos of each photo's best time over rounds (decode included:
that is the route's cost), and the ratio after / before.
"""

import argparse
import contextlib
import importlib.util
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from app import imaging
from app.errors import APIError
from model.data import load_mnist
from scripts.photos.corpus import CONDITIONS, photo

ROOT = Path(__file__).resolve().parents[2]
MAX_PIXELS = 16_000_000


def module_at(commit: str):
    """app/imaging.py as it was at `commit`, imported as `imaging_before`."""
    source = subprocess.run(
        ["git", "show", f"{commit}:app/imaging.py"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "imaging_before.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("imaging_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["imaging_before"] = module
    spec.loader.exec_module(module)
    return module


def png(digit: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(digit, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def best_time(preprocess, data: bytes, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        with contextlib.suppress(APIError):  # a no_digit answer costs what it costs
            preprocess(data, MAX_PIXELS)
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--before", default="fb5854d", help="commit to compare with")
    p.add_argument("--photos", type=int, default=40, help="photos (conditions in turn)")
    p.add_argument("--rounds", type=int, default=5, help="timings per photo; the best counts")
    p.add_argument("--mnist", action="store_true", help="28x28 PNG test digits, not photos")
    args = p.parse_args(argv)
    before = module_at(args.before)
    images, _ = load_mnist("test")
    rng = np.random.default_rng(0)
    conditions = CONDITIONS
    photos = [
        png(images[i]) if args.mnist else photo(images[i], conditions[i % len(conditions)], rng)
        for i in range(args.photos)
    ]
    times = {"before": [], "after": []}
    for data in photos:  # interleaved, so a busy moment hits both alike
        times["before"].append(best_time(before.preprocess, data, args.rounds))
        times["after"].append(best_time(imaging.preprocess, data, args.rounds))
    ms = {name: 1000 * statistics.median(values) for name, values in times.items()}
    kind = "28x28 PNG" if args.mnist else "640x480 JPEG"
    print(f"{kind}, median of {args.photos} images (best of {args.rounds} each):")
    print(f"  before ({args.before}): {ms['before']:.3f} ms")
    print(f"  after (this tree):  {ms['after']:.3f} ms")
    print(f"  after / before: {ms['after'] / ms['before']:.2f}x")


if __name__ == "__main__":
    main()
