"""PNG figures of a training run: learning curves, samples, reconstructions, latent space.

    python -m model.plots runs/vae            # uses runs/vae/best.pt and metrics.jsonl

Needs matplotlib (`pip install -e .[train]`).
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from model.data import fixed_binarization, load_mnist, to_unit  # noqa: E402


def image_grid(images: torch.Tensor, columns: int) -> np.ndarray:
    """(N, 1, H, W) in [0, 1] -> one (rows*H, columns*W) array, 1-pixel gaps."""
    n, _, h, w = images.shape
    rows = -(-n // columns)
    grid = np.ones((rows * (h + 1) - 1, columns * (w + 1) - 1), dtype=np.float32)
    for i, image in enumerate(images[:, 0].cpu().numpy()):
        r, c = divmod(i, columns)
        grid[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = image
    return grid


def save_image(array: np.ndarray, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 6 * array.shape[0] / array.shape[1] + 0.4))
    ax.imshow(array, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_learning_curves(metrics: list[dict], path: Path) -> None:
    epochs = [m["epoch"] for m in metrics]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(epochs, [m["train_loss"] for m in metrics], label="train loss (-bound)")
    ax1.plot(epochs, [-m["val_elbo"] for m in metrics], label="validation -ELBO")
    ax1.set(xlabel="epoch", ylabel="nats per image", title="Loss")
    # The final train loss may be the lowest point (an IWAE bound is tighter than the ELBO);
    # the KL warm-up's early dip is not, and would squash the curves.
    low = min(min(-m["val_elbo"] for m in metrics), metrics[-1]["train_loss"])
    ax1.set_ylim(low - 3, low + 25)
    ax1.legend()
    ax2.plot(epochs, [m["val_kl"] for m in metrics], label="KL(q(z|x) || p(z))")
    ax2.plot(epochs, [-m["val_recon"] for m in metrics], label="-E_q[log p(x|z)]")
    ax2.set(xlabel="epoch", ylabel="nats per image", title="Validation ELBO terms")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_latent_space(mu: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """The first two principal components of mu, one colour per digit."""
    centred = mu - mu.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    fig, ax = plt.subplots(figsize=(7, 6))
    points = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set(title="Latent means of test digits (PCA of mu)", xlabel="PC 1", ylabel="PC 2")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


# no_grad, not inference_mode: a TorchScript module first run with gradients on would
# fail under inference_mode ("Inference tensors cannot be saved for backward").
@torch.no_grad()
def plot_model(model, out: Path, data_dir: str | None = None, seed: int = 0) -> list[Path]:
    """Samples, reconstructions and latent space of `model` (eager or TorchScript)."""
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    images, labels = load_mnist("test", data_dir)
    x = to_unit(images)
    samples = image_grid(model.sample(100, 1.0), 10)
    save_image(samples, out / "samples.png", "Samples from the prior")
    inputs = fixed_binarization(x[:16])
    pairs = torch.stack([inputs, model.reconstruct(inputs)], 1).flatten(0, 1)
    save_image(image_grid(pairs, 8), out / "reconstructions.png", "Test inputs | reconstructions")
    mu = torch.cat([model.encode(b)[0] for b in fixed_binarization(x[:5000]).split(1000)])
    plot_latent_space(mu.numpy(), labels[:5000], out / "latent_space.png")
    rows = []
    for a, b in ((0, 1), (2, 3), (4, 5)):  # straight lines between the means of test digits
        t = torch.linspace(0, 1, 10).unsqueeze(1)
        rows.append(model.decode((1 - t) * mu[a] + t * mu[b]))
    save_image(image_grid(torch.cat(rows), 10), out / "interpolation.png", "Interpolations in z")
    names = ("samples.png", "reconstructions.png", "latent_space.png", "interpolation.png")
    return [out / name for name in names]


def plot_run(run_dir: Path, checkpoint: Path | None = None, data_dir: str | None = None) -> None:
    from model.train import load_checkpoint

    run_dir = Path(run_dir)
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    plot_learning_curves(metrics, run_dir / "learning_curves.png")
    model, _ = load_checkpoint(checkpoint or run_dir / "best.pt")
    plot_model(model.eval(), run_dir, data_dir)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run_dir", help="a vae-train --out folder")
    p.add_argument("--checkpoint", default=None, help="pictures of this (default: best.pt)")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    args = p.parse_args(argv)
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    plot_run(Path(args.run_dir), checkpoint, data_dir=args.data_dir)


if __name__ == "__main__":
    main()
