"""Evaluate a VAE on the fixed-binarized MNIST test set: ELBO and the IWAE estimate of the NLL.

    vae-eval model/vae_mnist.pt                 # the shipped TorchScript file
    vae-eval runs/vae/best.pt --k 1000          # or a training checkpoint

The NLL estimate is the importance-weighted bound of Burda et al. (2015),
    log p(x) ~ logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K,
which approaches log p(x) from below as K grows; K = 1000 is the standard protocol.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from model import artifact
from model.artifact import ArtifactError
from model.data import fixed_binarization, load_mnist, to_unit
from model.vae import iwae_bound, iwae_log_weights, likelihood_of

log = logging.getLogger(__name__)

TEST_BINARIZATION_SEED = 0


def load_test_set(data_dir: str | None = None, limit: int | None = None) -> torch.Tensor:
    """The 10k test images, binarized once with a fixed seed (the same on every call)."""
    images, _ = load_mnist("test", data_dir)
    x = fixed_binarization(to_unit(images), TEST_BINARIZATION_SEED)
    return x[:limit] if limit else x


# no_grad, not inference_mode: a TorchScript module first run with gradients on would
# fail under inference_mode ("Inference tensors cannot be saved for backward").
@torch.no_grad()
def evaluate(
    model, x: torch.Tensor, k: int = 1000, max_rows: int = 20000, progress: bool = True
) -> dict[str, float]:
    """Mean test ELBO and IWAE(k) log-likelihood, in nats (NLL = -log-likelihood).

    `model` has `encode` and `decode_logits` (eager VAE or TorchScript module). Images are
    processed so that at most `max_rows` decoder rows (images x samples) are in memory.
    """
    per_batch = max(1, max_rows // k)
    sums = {"elbo": 0.0, "iwae": 0.0}
    bar = tqdm(x.split(per_batch), desc=f"IWAE k={k}", disable=not progress, dynamic_ncols=True)
    for batch in bar:
        log_w = iwae_log_weights(model, batch, k, likelihood_of(model))  # (k, B)
        sums["elbo"] += log_w.mean(0).sum().item()  # k-sample Monte-Carlo ELBO
        sums["iwae"] += iwae_bound(log_w).sum().item()
    n = len(x)
    return {
        "test_elbo": sums["elbo"] / n,
        "test_nll_iwae": -sums["iwae"] / n,
        "iwae_k": k,
        "n_images": n,
    }


def load_any(path: str | Path):
    """A TorchScript file or a training checkpoint, in eval mode on the CPU."""
    path = Path(path)
    try:
        return artifact.load(path)[0]
    except ArtifactError:
        from model.train import load_checkpoint

        return load_checkpoint(path)[0].eval()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model", help="TorchScript file or training checkpoint")
    p.add_argument("--k", type=int, default=1000, help="importance samples (default: 1000)")
    p.add_argument("--limit", type=int, default=None, help="first N test images only")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the importance samples")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = load_any(args.model)
    t0 = time.perf_counter()
    result = evaluate(model, load_test_set(args.data_dir, args.limit), args.k)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["command"] = " ".join(["vae-eval", *(argv if argv is not None else sys.argv[1:])])
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
