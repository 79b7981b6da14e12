"""How often the digit of a photo is recovered, per condition of the photo corpus, beside the
same digits sent as clean 28x28 images.

    OMP_NUM_THREADS=1 MNIST_DIR=../shared/data/mnist python -m scripts.photos.recovery \\
        --per-condition 500 --json docs/photos/recovery.json --figure docs/img/photo_corpus.png

Recovered: the label of the nearest training digit to the photo's mu (Euclidean, in latent
space; training mu from the same model), compared with the true label. Photos go through the
service's own preprocessing (app.imaging.preprocess) and the model file's encode method, so
the figure is what POST /encode gives. A photo answered with no_digit counts as not recovered.
"""

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from app.errors import APIError
from app.imaging import preprocess
from model.data import load_mnist
from scripts.photos.corpus import CONDITIONS, HAND_MADE, photo

ROOT = Path(__file__).resolve().parents[2]
MAX_PIXELS = 16_000_000
CLEAN = "clean 28x28"


def png(digit: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    return buffer.getvalue()


class Reader:
    """The model's encoder and the mu of training digits: image bytes -> recovered label."""

    def __init__(self, model_path: Path, train_count: int, data_dir: str | None = None):
        self.model = torch.jit.load(str(model_path), map_location="cpu").eval()
        images, labels = load_mnist("train", data_dir)
        x = torch.from_numpy(images[:train_count]).float().div(255).unsqueeze(1)
        with torch.inference_mode():
            self.train_mu = torch.cat([self.model.encode(b)[0] for b in x.split(2000)])
        self.train_labels = torch.from_numpy(labels[:train_count].astype(np.int64))

    def labels(self, inputs: np.ndarray) -> np.ndarray:
        """(N, 1, 28, 28) model inputs -> (N,) nearest-neighbour labels of their mu."""
        with torch.inference_mode():
            mu = self.model.encode(torch.from_numpy(inputs))[0]
        nearest = torch.cdist(mu, self.train_mu).argmin(dim=1)
        return self.train_labels[nearest].numpy()


def model_inputs(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed inputs (N, 1, 28, 28) and whether each had a digit (no_digit -> zeros)."""
    inputs, found = np.zeros((len(blobs), 1, 28, 28), np.float32), np.ones(len(blobs), bool)
    for i, blob in enumerate(blobs):
        try:
            inputs[i] = preprocess(blob, MAX_PIXELS)
        except APIError as e:
            if e.code != "no_digit":
                raise
            found[i] = False
    return inputs, found


def recovery(
    reader: Reader,
    images: np.ndarray,
    labels: np.ndarray,
    conditions: list[str],
    seed: int = 0,
    blanks: int = 50,
) -> tuple[dict[str, dict], dict[str, tuple[bytes, np.ndarray]]]:
    """Per condition: share recovered, share refused as no_digit, share of blank sheets
    (no digit drawn) refused as they should be; plus one example each."""
    results, examples = {}, {}
    for condition in [CLEAN, *conditions]:
        rng = np.random.default_rng([seed, len(results)])
        started = time.perf_counter()
        if condition == CLEAN:
            blobs = [png(d) for d in images]
        else:
            blobs = [photo(d, condition, rng) for d in images]
        inputs, found = model_inputs(blobs)
        right = (reader.labels(inputs) == labels) & found
        blank = np.zeros((28, 28), np.uint8)
        if condition == CLEAN:
            sheets = [png(blank)]
        else:
            sheets = [photo(blank, condition, rng) for _ in range(blanks)]
        results[condition] = {
            "recovered": float(right.mean()),
            "no_digit": float(1 - found.mean()),
            "n": len(images),
            "blank_refused": float(1 - model_inputs(sheets)[1].mean()),
            "blank_n": len(sheets),
            "seconds": round(time.perf_counter() - started, 1),
        }
        examples[condition] = (blobs[0], inputs[0, 0])
    return results, examples


def table(results: dict[str, dict]) -> str:
    clean = results[CLEAN]["recovered"]
    lines = [
        "| condition | digits recovered | vs clean 28x28 | digits refused as no_digit "
        "| blank sheets refused |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        delta = "" if name == CLEAN else f"{100 * (r['recovered'] - clean):+.1f} points"
        recovered, refused = 100 * r["recovered"], 100 * r["no_digit"]
        blank = f"{100 * r['blank_refused']:.0f} % of {r['blank_n']}"
        lines.append(f"| {name} | {recovered:.1f} % | {delta} | {refused:.1f} % | {blank} |")
    return "\n".join(lines)


def figure(examples: dict[str, tuple[bytes, np.ndarray]], path: Path, per_row: int = 7) -> None:
    """One photo per condition, each above the 28x28 input the encoder saw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in examples if n != CLEAN]
    rows = -(-len(names) // per_row)
    fig, axes = plt.subplots(2 * rows, per_row, figsize=(1.9 * per_row, 3.3 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for i, name in enumerate(names):
        blob, seen = examples[name]
        top, bottom = (
            axes[2 * (i // per_row), i % per_row],
            axes[2 * (i // per_row) + 1, i % per_row],
        )
        top.imshow(Image.open(io.BytesIO(blob)))
        top.set_title(name, fontsize=9)
        bottom.imshow(seen, cmap="gray", vmin=0, vmax=1)
        bottom.set_title("encoder input", fontsize=7, color="0.4")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", type=Path, default=ROOT / "model" / "vae_mnist.pt")
    p.add_argument("--per-condition", type=int, default=500, help="test digits per condition")
    p.add_argument("--train", type=int, default=60_000, help="training digits to compare with")
    p.add_argument("--blanks", type=int, default=50, help="blank sheets per condition")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="default: $MNIST_DIR")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--figure", type=Path, help="write a picture of one photo per condition")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    images, labels = load_mnist("test", args.data_dir)
    pick = np.random.default_rng(args.seed).permutation(len(images))[: args.per_condition]
    reader = Reader(args.model, args.train, args.data_dir)
    conditions = [*CONDITIONS, *HAND_MADE]
    results, examples = recovery(
        reader, images[pick], labels[pick], conditions, args.seed, args.blanks
    )
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.figure:
        figure(examples, args.figure)


if __name__ == "__main__":
    main()
