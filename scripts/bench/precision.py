"""How far VAE_PRECISION=bfloat16 moves the outputs from float32, on the same model file.

    python -m scripts.bench.precision                # the shipped model, 1,000 of each

Prints the share of 8-bit pixels that stay equal when decoding prior samples, the largest
difference in grey levels, and the differences in mu and sigma of encoded test digits.
"""

import argparse
import os
from pathlib import Path

import torch

from model import artifact
from model.data import load_mnist

ROOT = Path(__file__).resolve().parents[2]


def to_levels(images: torch.Tensor) -> torch.Tensor:
    """Bernoulli means -> 8-bit grey levels, as the PNG writer rounds them."""
    return (images.float().clamp(0, 1) * 255 + 0.5).floor()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", type=Path, default=ROOT / "model" / "vae_mnist.pt")
    p.add_argument("--n", type=int, default=1000, help="samples and test digits")
    p.add_argument("--mnist-dir", type=Path, default=os.environ.get("MNIST_DIR"))
    args = p.parse_args()
    full = artifact.load(args.model)[0]
    half = artifact.load(args.model)[0].to(torch.bfloat16)
    torch.manual_seed(0)
    with torch.inference_mode():
        z = torch.randn(args.n, int(full.latent_dim))
        diff = (to_levels(full.decode(z)) - to_levels(half.decode(z.bfloat16()))).abs()
        print(
            f"decode {args.n} prior samples: {100 * (diff == 0).float().mean():.1f} % of pixels "
            f"equal, max difference {diff.max():.0f} grey levels, mean {diff.mean():.3f}"
        )
        images, _ = load_mnist("test", args.mnist_dir or ROOT.parent / "shared/data/mnist")
        x = torch.from_numpy(images[: args.n]).float().div(255).unsqueeze(1)
        (mu, sigma), (mu_h, sigma_h) = full.encode(x), half.encode(x.bfloat16())
        d_mu, d_sigma = (mu - mu_h.float()).abs(), (sigma - sigma_h.float()).abs() / sigma
        print(
            f"encode {args.n} test digits: |mu difference| max {d_mu.max():.4f}, mean "
            f"{d_mu.mean():.4f}; relative sigma difference max {d_sigma.max():.4f}"
        )


if __name__ == "__main__":
    main()
