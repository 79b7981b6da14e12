"""Figures of the dSprites beta-VAE on held-out factor combinations; they go into its card.

    python -m model.evaluate_dsprites model/vae_dsprites.pt     # ~5 min on one busy thread

- Likelihood: ELBO (beta = 1) and the IWAE bound (Burda et al. 2015) in nats per image.
- Linear read-out: least squares from mu to position x, position y and scale, fitted on
  training combinations, R² on held-out ones.
- Shape accuracy of the exported classifier head (`classify`).
- Shapes on demand (`GET /sample?class=heart`): a separate MLP on pixels, trained here on
  training combinations, grades 500 decoded samples per shape, drawn as the service draws
  them (with the classifier's rejection) and from the mixture alone; diversity is their
  mean pairwise pixel distance over that of held-out images of the shape.
- MIG (Chen et al. 2018) as disentanglement_lib computes it (Locatello et al. 2019): mu
  discretised into 20 equal-width bins per dimension, the mutual information of each
  dimension with each factor, and per factor the gap between the two most informative
  dimensions divided by the factor's entropy, averaged over the 5 factors.
Pictures: docs/img/dsprites_traversal.png (one row per latent dimension, by KL, named by
the factor it carries most information about), dsprites_samples.png,
dsprites_reconstructions.png, dsprites_shape_samples.png (one row per shape).
"""

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from model import artifact, dsprites  # noqa: E402
from model.dsprites_card import held_out, labelled  # noqa: E402
from model.evaluate import evaluate  # noqa: E402
from model.evaluate_heads import grade, train_grader  # noqa: E402
from model.export import update_card  # noqa: E402
from model.plots import image_grid, save_image  # noqa: E402
from model.vae import gaussian_kl  # noqa: E402

IMG = Path("docs/img")
READOUT = {"position_x": 3, "position_y": 4, "scale": 1}  # factor -> column of factor_values
BINS = 20
GRADER_IMAGES = 40_000  # training combinations the separate shape grader learns from
INACTIVE_KL = 0.5  # nats: a dimension below this mean KL carries little; not named


@torch.no_grad()
def encode(module, index: np.ndarray, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """mu and sigma (N, D) of the images of these indices."""
    chunks = np.array_split(index, -(-len(index) // batch))
    parts = [module.encode(dsprites.images(i)) for i in chunks]
    return torch.cat([p[0] for p in parts]).numpy(), torch.cat([p[1] for p in parts]).numpy()


@torch.no_grad()
def classify(module, index: np.ndarray, batch: int = 500) -> np.ndarray:
    """The classifier head's shape (0 square, 1 ellipse, 2 heart) of each image: (N,)."""
    chunks = np.array_split(index, -(-len(index) // batch))
    parts = [module.classify(dsprites.images(i))[0].argmax(-1) for i in chunks]
    return torch.cat(parts).numpy()


def r2_linear(mu_train, y_train, mu_test, y_test) -> float:
    """R² on the test set of the least-squares fit y ~ mu W + b on the training set."""
    design = np.c_[mu_train, np.ones(len(mu_train))]
    weights, *_ = np.linalg.lstsq(design, y_train, rcond=None)
    predicted = np.c_[mu_test, np.ones(len(mu_test))] @ weights
    return float(1 - ((y_test - predicted) ** 2).sum() / ((y_test - y_test.mean()) ** 2).sum())


def r2_mlp(mu_train, y_train, mu_test, y_test, steps: int = 500, seed: int = 0) -> float:
    """R² on the test set of a small MLP (D-64-64-1, full-batch Adam) fitted on the training
    set: whether the factor is in mu at all, where the linear read-out says how plainly."""
    torch.manual_seed(seed)
    x, y = torch.from_numpy(mu_train).float(), torch.from_numpy(y_train).float()
    mean, std = y.mean(), y.std()
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
        torch.nn.ReLU(), torch.nn.Linear(64, 1),
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = (net(x).squeeze(-1) - (y - mean) / std).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = (net(torch.from_numpy(mu_test).float()).squeeze(-1) * std + mean).numpy()
    return float(1 - ((y_test - predicted) ** 2).sum() / ((y_test - y_test.mean()) ** 2).sum())


def discrete_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats of two integer label arrays (N,), from their joint histogram."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def entropy(a: np.ndarray) -> float:
    p = np.bincount(a) / len(a)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def mutual_information_matrix(mu: np.ndarray, factors: np.ndarray, bins: int = BINS):
    """(D, 5) I(z_d; factor_j) with z_d binned as in disentanglement_lib, and H (5,)."""
    binned = np.stack(
        [np.digitize(m, np.histogram(m, bins)[1][:-1]) - 1 for m in mu.T], axis=1
    )  # (N, D) in range(bins)
    mi = np.array([[discrete_mutual_information(b, f) for f in factors.T] for b in binned.T])
    return mi, np.array([entropy(f) for f in factors.T])


def mig(mi: np.ndarray, h: np.ndarray) -> tuple[float, np.ndarray]:
    """Mutual information gap (Chen et al. 2018): mean over factors of (top1 - top2) / H."""
    top = np.sort(mi, axis=0)[::-1]
    gaps = (top[0] - top[1]) / h
    return float(gaps.mean()), gaps


@torch.no_grad()
def traversal(module, mu0: torch.Tensor, dims: list[int], steps: int = 10, span: float = 2.5):
    """Images (len(dims) * steps, 1, H, W): each dim in turn from -span to +span around mu0."""
    values = torch.linspace(-span, span, steps)
    z = mu0.repeat(len(dims) * steps, 1)
    for row, d in enumerate(dims):
        z[row * steps : (row + 1) * steps, d] = values
    return module.decode(z)


def plot_traversal(images: torch.Tensor, labels: list[str], steps: int, path: Path) -> None:
    grid = image_grid(images, steps)
    fig, ax = plt.subplots(figsize=(8, 8 * grid.shape[0] / grid.shape[1] + 0.5))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    h = images.shape[-2] + 1
    ax.set_yticks([h * i + h / 2 for i in range(len(labels))], labels)
    ax.set_xticks([])
    ax.set_title(
        "z_d from -2.5 to 2.5 around a held-out image's mu; rows by KL (nats), named by the\n"
        "factor z_d carries most information about (MI / H of that factor)"
    )
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def train_shape_grader(train, epochs: int, seed: int) -> torch.nn.Module:
    """A CNN on the 64x64 pixels, separate from the VAE, that tells the three shapes."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 4, 2, 1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 4, 2, 1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 4, 2, 1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 8 * 8, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, len(dsprites.SHAPES)),
    )
    return train_grader(net, train, epochs)


def conditional_sampling(module, test_index: np.ndarray, img: Path, n: int = 500) -> dict:
    """Shapes on demand, graded by a pixel classifier: as served and from the mixture alone."""
    grader_index = np.random.default_rng(3).choice(dsprites.split()[0], GRADER_IMAGES, False)
    grader = train_shape_grader(labelled(np.sort(grader_index)), epochs=8, seed=0)
    test = labelled(test_index[:2000])
    with torch.no_grad():
        grader_accuracy = (grader(test.images).argmax(-1) == test.labels).float().mean().item()
    served, diversity, rows = grade(module, grader, test, n, 1.0, seed=0)
    alone, alone_diversity, _ = grade(module, grader, test, n, 1.0, seed=0, candidates=1)

    def by_shape(per_class: dict) -> dict:  # grade's "0", "1", "2" -> the shapes' names
        return {dsprites.SHAPES[int(c)]: value for c, value in per_class.items()}

    save_image(image_grid(torch.cat(rows), 10), img / "dsprites_shape_samples.png",
               "GET /sample?class=... (one row per shape: square, ellipse, heart)")  # fmt: skip
    return {
        "samples_per_shape": n,
        "temperature": 1.0,
        "grader": "a small CNN on pixels (3 strided convolutions, 16-32-64 channels), 8 "
        f"epochs on {GRADER_IMAGES:,} training combinations",
        "grader_accuracy_held_out": grader_accuracy,
        "candidates": module.class_candidates,
        "acceptance": module.class_acceptance.item(),
        "accuracy_per_shape": by_shape(served),
        "diversity_per_shape": by_shape(diversity),
        "mixture_alone": {
            "accuracy_per_shape": by_shape(alone),
            "diversity_per_shape": by_shape(alone_diversity),
        },
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model", help="exported file (model/vae_dsprites.pt)")
    p.add_argument("--n", type=int, default=10_000, help="held-out images (default 10000)")
    p.add_argument("--k", type=int, default=100, help="IWAE samples (default 100)")
    p.add_argument("--k-images", type=int, default=500, help="images of the bound (default 500)")
    p.add_argument("--threads", type=int, default=1, help="default: %(default)s")
    p.add_argument("--no-card", action="store_true", help="print only, leave the card alone")
    p.add_argument("--img-dir", default=str(IMG), help="pictures go here (default: docs/img)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    command = " ".join(["python -m model.evaluate_dsprites", *(argv or sys.argv[1:])])
    module, card = artifact.load(args.model)

    test_index = held_out(args.n, seed=1)
    train_index = np.sort(np.random.default_rng(2).choice(dsprites.split()[0], args.n, False))
    mu, sigma = encode(module, test_index)
    mu_train, _ = encode(module, train_index)
    f_test, f_train = dsprites.factors_of(test_index), dsprites.factors_of(train_index)
    v_test, v_train = dsprites.factor_values(f_test), dsprites.factor_values(f_train)

    r2 = {
        name: r2_linear(mu_train, v_train[:, col], mu, v_test[:, col])
        for name, col in READOUT.items()
    }
    r2_nonlinear = {
        name: r2_mlp(mu_train, v_train[:, col], mu, v_test[:, col]) for name, col in READOUT.items()
    }
    correct = classify(module, test_index) == f_test[:, 0]
    shape_accuracy = float(correct.mean())
    by_scale = [float(correct[f_test[:, 1] == s].mean()) for s in range(len(dsprites.SCALES))]
    kl = gaussian_kl(torch.from_numpy(mu), torch.from_numpy(sigma).log()).numpy()  # (N,)
    kl_dims = (0.5 * (mu**2 + sigma**2 - 1 - 2 * np.log(sigma))).mean(0)  # (D,)
    mi, h = mutual_information_matrix(mu, f_test)
    mig_value, gaps = mig(mi, h)
    order = [int(d) for d in np.argsort(-kl_dims)]
    dims = []
    for d in order:
        j = int(mi[d].argmax())
        factor = dsprites.FACTOR_NAMES[j] if kl_dims[d] >= INACTIVE_KL else "inactive"
        share = float(mi[d, j] / h[j])
        dims.append({"dim": d, "kl": float(kl_dims[d]), "factor": factor, "mi_share": share})

    torch.manual_seed(0)
    x_k = dsprites.images(test_index[: args.k_images])
    likelihood = evaluate(module, x_k, args.k, progress=True)
    with torch.no_grad():
        x = dsprites.images(test_index[:2000])
        elbo = float(evaluate(module, x, 1, progress=False)["test_elbo"])

    img = Path(args.img_dir)
    img.mkdir(parents=True, exist_ok=True)
    steps = 10
    labels = [f"z{d['dim']} KL {d['kl']:.1f}: {d['factor']} ({d['mi_share']:.2f})" for d in dims]
    row = int(np.flatnonzero(f_test[:, 1] >= 3)[0])  # a held-out shape of scale >= 0.8
    start = torch.from_numpy(mu[row : row + 1])
    images = traversal(module, start, order, steps)
    plot_traversal(images, labels, steps, img / "dsprites_traversal.png")
    with torch.no_grad():
        torch.manual_seed(0)
        save_image(image_grid(module.sample(64, 1.0), 8), img / "dsprites_samples.png",
                   "64 samples from the prior, z ~ N(0, I)")  # fmt: skip
        originals = dsprites.images(test_index[:16])
        pairs = torch.stack([originals, module.reconstruct(originals)], 1).flatten(0, 1)
        save_image(image_grid(pairs, 8), img / "dsprites_reconstructions.png",
                   "held-out images (left) and their reconstructions (right)")  # fmt: skip

    shapes_on_demand = conditional_sampling(module, test_index, img)

    evaluation = {
        "command": command,
        "shapes_on_demand": shapes_on_demand,
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "n_images": args.n,
        "r2_linear": r2,
        "r2_mlp": r2_nonlinear,
        "shape_accuracy": shape_accuracy,
        "shape_accuracy_by_scale": {
            f"{s:.1f}": a for s, a in zip(dsprites.SCALES, by_scale, strict=True)
        },
        "mig": {
            "mig": mig_value,
            "bins": BINS,
            "per_factor": dict(zip(dsprites.FACTOR_NAMES, gaps.tolist(), strict=True)),
        },
        "mutual_information": mi.tolist(),
        "factor_entropy": h.tolist(),
        "kl_mean": float(kl.mean()),
        "dims": dims,
    }
    metrics = {
        "test_nll_iwae": likelihood["test_nll_iwae"],
        "iwae_k": args.k,
        "n_images": args.k_images,
        "test_elbo": elbo,
        "elbo_n_images": len(x),
        "command": command,
    }
    for name, value in r2.items():
        print(f"R² read-out {name}: linear {value:.3f}, MLP {r2_nonlinear[name]:.3f}")
    print(f"shape accuracy (classify head): {shape_accuracy:.4f}, by scale {np.round(by_scale, 3)}")
    print(f"MIG: {mig_value:.3f}  per factor: {np.round(gaps, 3).tolist()}")
    print(f"NLL (IWAE K={args.k}, {args.k_images} held-out): {likelihood['test_nll_iwae']:.2f}")
    print(f"ELBO ({len(x)} held-out): {elbo:.2f}  mean KL {kl.mean():.2f}")
    for d in dims:
        print(f"  z{d['dim']}: KL {d['kl']:.2f}  {d['factor']}  MI/H {d['mi_share']:.2f}")
    print(f"shapes on demand: {shapes_on_demand}")
    if not args.no_card:
        card["metrics"] = {**card.get("metrics", {}), **metrics}
        card["evaluation"] = evaluation
        update_card(args.model, card)
        print(f"card of {args.model} updated")


if __name__ == "__main__":
    main()
