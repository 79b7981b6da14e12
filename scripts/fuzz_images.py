"""Fuzz app.imaging.preprocess with mutated PNG/JPEG/GIF/BMP/WebP/TIFF bytes, for a time budget.

    OMP_NUM_THREADS=1 python scripts/fuzz_images.py --seconds 300

Hypothesis draws a valid seed image and a list of mutations (byte flips, overwrites with
boundary values, insertions, deletions, truncation, duplicated slices). The documented
outcome of any input is an (1, 28, 28) finite array in [0, 1] or an APIError (4xx); any
other exception, a wrong array, or a case slower than --slow-s is a crash. A crash is
shrunk by Hypothesis, saved under --crash-dir and the script exits 1.
"""

import argparse
import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.errors import APIError
from app.imaging import preprocess

MAX_PIXELS = 16_000_000  # the service default (VAE_MAX_IMAGE_PIXELS)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def seed_images() -> dict[str, bytes]:
    """Small valid images in every accepted format and the modes that take special paths."""
    rng = np.random.default_rng(0)
    grey = Image.fromarray(rng.integers(0, 256, (24, 20), dtype=np.uint8), "L")
    rgb = Image.fromarray(rng.integers(0, 256, (16, 12, 3), dtype=np.uint8), "RGB")
    frames = [grey.convert("P"), Image.new("P", grey.size, 3)]
    palette = grey.convert("P")
    palette.info["transparency"] = 0
    return {
        "png-L": encoded(grey, "PNG"),
        "png-RGBA": encoded(rgb.convert("RGBA"), "PNG"),
        "png-P-transparent": encoded(palette, "PNG"),
        "png-I16": encoded(Image.fromarray(np.asarray(grey).astype(np.uint16) * 257), "PNG"),
        "jpeg-RGB": encoded(rgb, "JPEG", quality=80),
        "jpeg-CMYK": encoded(rgb.convert("CMYK"), "JPEG"),
        "jpeg-progressive": encoded(grey, "JPEG", progressive=True),
        "gif-animated": encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "bmp": encoded(rgb, "BMP"),
        "webp": encoded(rgb, "WEBP"),
        "tiff": encoded(rgb, "TIFF", compression="tiff_lzw"),
    }


SEEDS = seed_images()
BOUNDARY = [b"\x00", b"\xff", b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"]

position = st.floats(0, 1, exclude_max=True)
mutation = st.one_of(
    st.tuples(st.just("flip"), position, st.integers(1, 255)),
    st.tuples(st.just("overwrite"), position, st.sampled_from(BOUNDARY)),
    st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), position, st.integers(1, 64)),
    st.tuples(st.just("truncate"), position, st.none()),
    st.tuples(st.just("duplicate"), position, st.integers(1, 256)),
)


def mutate(data: bytes, mutations: list[tuple]) -> bytes:
    out = bytearray(data)
    for kind, where, arg in mutations:
        i = int(where * len(out)) if out else 0
        if kind == "flip" and out:
            out[i] ^= arg
        elif kind == "overwrite":
            out[i : i + len(arg)] = arg
        elif kind == "insert":
            out[i:i] = arg
        elif kind == "delete":
            del out[i : i + arg]
        elif kind == "truncate":
            del out[i:]
        elif kind == "duplicate":
            out[i:i] = out[i : i + arg]
    return bytes(out)


def check(data: bytes, slow_s: float) -> str:
    """'ok' or the APIError code; raises AssertionError (or anything else) on a crash."""
    started = time.perf_counter()
    try:
        x = preprocess(data, MAX_PIXELS)
    except APIError as e:
        outcome = str(e.status)
    else:
        assert x.shape == (1, 28, 28) and x.dtype == np.float32, (x.shape, x.dtype)
        assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
        outcome = "ok"
    elapsed = time.perf_counter() - started
    assert elapsed < slow_s, f"took {elapsed:.2f} s"
    return outcome


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="time budget")
    p.add_argument("--slow-s", type=float, default=2.0, help="a case slower than this crashes")
    p.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"))
    args = p.parse_args(argv)

    warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on corrupt EXIF/TIFF tags
    outcomes: dict[str, dict[str, int]] = {name: {} for name in SEEDS}
    last: list[bytes] = []

    @settings(
        max_examples=500,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.sampled_from(sorted(SEEDS)), st.lists(mutation, min_size=1, max_size=4))
    def one_case(seed: str, mutations: list[tuple]) -> None:
        data = mutate(SEEDS[seed], mutations)
        last[:] = [data]
        outcome = check(data, args.slow_s)
        outcomes[seed][outcome] = outcomes[seed].get(outcome, 0) + 1

    stop = time.monotonic() + args.seconds
    try:
        while time.monotonic() < stop:
            one_case()
    except Exception as e:  # Hypothesis re-raises the shrunk failure last
        args.crash_dir.mkdir(parents=True, exist_ok=True)
        path = args.crash_dir / f"crash-{int(time.time())}.bin"
        path.write_bytes(last[0])
        print(f"CRASH {type(e).__name__}: {e}\nminimal input saved to {path}", file=sys.stderr)
        sys.exit(1)
    total = sum(sum(counts.values()) for counts in outcomes.values())
    print(f"{total} cases in {args.seconds:.0f} s, no crash")
    for name, counts in outcomes.items():
        print(f"  {name:18} {dict(sorted(counts.items()))}")


if __name__ == "__main__":
    main()
