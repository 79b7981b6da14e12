"""The preprocessing pipeline, step by step, on a few corpus photos (docs/preprocessing.md).

    OMP_NUM_THREADS=1 MNIST_DIR=../shared/data/mnist python -m scripts.photos.pipeline_figure \\
        --out docs/img/preprocessing.png

One row per photo: the photo, the analysed image with its ink made bright, the background
removed, the digit's ink cropped, the 28x28 model input, and the shipped model's
reconstruction of it.
"""

import argparse
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from app import digits, imaging
from model.data import load_mnist
from scripts.photos.corpus import photo

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    (0, "lighting gradient"),
    (3, "paper on a desk"),
    (5, "hard shadow"),
    (8, "chalk on a board"),
]
COLUMNS = ["photo", "ink made bright", "background removed", "digit cropped", "28x28 input",
           "reconstruction"]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "preprocessing.png")
    p.add_argument("--model", type=Path, default=ROOT / "model" / "vae_mnist.pt")
    args = p.parse_args(argv)
    images, _ = load_mnist("test")
    model = torch.jit.load(str(args.model), map_location="cpu").eval()
    fig, axes = plt.subplots(len(ROWS), len(COLUMNS), figsize=(2.0 * len(COLUMNS), 1.9 * len(ROWS)))
    for row, (index, condition) in enumerate(ROWS):
        data = photo(images[index], condition, np.random.default_rng(index))
        steps = digits.find_digit(imaging.to_grey(imaging.open_image(data, 10**8)))
        with torch.inference_mode():
            rebuilt = model.reconstruct(torch.from_numpy(steps.frame)[None, None])[0, 0]
        pictures = [
            Image.open(io.BytesIO(data)),
            steps.work,
            np.clip(steps.ink / max(float(steps.ink.max()), 1e-6), 0, 1),
            steps.digit,
            steps.frame,
            rebuilt.numpy(),
        ]
        for column, picture in enumerate(pictures):
            ax = axes[row, column]
            ax.imshow(picture, cmap=None if column == 0 else "gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(COLUMNS[column], fontsize=9)
        axes[row, 0].set_ylabel(condition, fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
