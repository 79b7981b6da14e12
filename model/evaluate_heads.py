"""How well the exported capabilities work: out-of-distribution detection by score,
conditional-sample accuracy, pictures; the figures go into the model card.

    python -m model.evaluate_heads model/vae_mnist.pt          # time: docs/capabilities.md

- Score: the OOD score behind `typical` and the log-likelihood (and ELBO, reconstruction,
  KL) of MNIST test digits against generated out-of-distribution sets (uniform noise,
  inverted digits, digits rotated 90 degrees, shuffled pixels, random strokes, letters
  rendered from a font); AUROC per set, with each statistic taken as "higher = more like
  MNIST" (-KL for the KL). model/evaluate_ood.py compares OOD methods on more sets.
- Conditional sampling: a separate small classifier on *pixels* (an MLP trained here on
  the MNIST training digits, never on mu) grades decoded samples of each digit, so the
  VAE's own head does not grade itself; their diversity is the mean pairwise pixel
  distance of the samples over that of test digits of the same class (1 = as varied).
Pictures: docs/img/score_histogram.png, digit_samples.png (a 10x10 grid, one row per
digit), confusion_matrix.png (the card's classifier figures).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from tqdm import tqdm  # noqa: E402

from model import artifact  # noqa: E402
from model.export import update_card  # noqa: E402
from model.fit_heads import Digits  # noqa: E402
from model.heads import SCORE_OUTPUTS  # noqa: E402
from model.ood import auroc  # noqa: E402
from model.plots import image_grid, save_image  # noqa: E402

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian's fonts-dejavu-core
STATISTICS = ("ood_score", "log_likelihood", "elbo", "reconstruction", "kl")
SIGN = {"ood_score": 1, "log_likelihood": 1, "elbo": 1, "reconstruction": 1, "kl": -1}


def strokes(n: int, rng: np.random.Generator) -> torch.Tensor:
    """Random lines and arcs drawn white on black, 2-3 pixels wide."""
    images = []
    for _ in range(n):
        canvas = Image.new("L", (28, 28), 0)
        draw = ImageDraw.Draw(canvas)
        for _ in range(rng.integers(1, 4)):
            points = [tuple(int(v) for v in rng.integers(4, 24, 2)) for _ in range(3)]
            if rng.random() < 0.5:
                draw.line(points, fill=255, width=int(rng.integers(2, 4)))
            else:
                box = sorted(rng.integers(4, 24, 2)), sorted(rng.integers(4, 24, 2))
                start = int(rng.integers(0, 360))
                draw.arc(
                    [box[0][0], box[1][0], box[0][1] + 2, box[1][1] + 2],
                    start,
                    start + int(rng.integers(90, 300)),
                    fill=255,
                    width=int(rng.integers(2, 4)),
                )
        images.append(np.asarray(canvas, dtype=np.float32) / 255)
    return torch.from_numpy(np.stack(images)).unsqueeze(1)


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def render_letters(
    fonts: list[Path],
    n: int,
    rng: np.random.Generator,
    side: int = 28,
    size: tuple[int, int] = (16, 23),
    ink: int = 255,
    paper: int = 0,
) -> torch.Tensor:
    """n letters A-Z a-z from these fonts in turn (Pillow's default font where a file is
    missing), centred; (n, 1, side, side) in [0, 1]."""
    images = []
    for i in range(n):
        path, points = fonts[i % len(fonts)], int(rng.integers(*size))
        font = (
            ImageFont.truetype(str(path), points)
            if path.exists()
            else ImageFont.load_default(points)
        )
        char = ALPHABET[rng.integers(len(ALPHABET))]
        canvas = Image.new("L", (side, side), paper)
        draw = ImageDraw.Draw(canvas)
        left, top, right, bottom = draw.textbbox((0, 0), char, font=font)
        middle = side / 2
        draw.text((middle - (left + right) / 2, middle - (top + bottom) / 2), char, ink, font)
        images.append(np.asarray(canvas, dtype=np.float32) / 255)
    return torch.from_numpy(np.stack(images)).unsqueeze(1)


def letters(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, str]:
    """Latin letters A-Z and a-z rendered white on black and centred, MNIST-like size."""
    source = FONT.name if FONT.exists() else "Pillow's default font"
    return render_letters([FONT], n, rng), source


def ood_sets(test: torch.Tensor, n: int, seed: int) -> tuple[dict[str, torch.Tensor], str]:
    """The generated out-of-distribution sets, n images each, (n, 1, 28, 28) in [0, 1]."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    digits = test[-n:]  # the last test digits (the in-distribution set uses the first)
    shuffled = torch.stack(
        [x.flatten()[torch.randperm(784, generator=generator)].view(1, 28, 28) for x in digits]
    )
    letter_images, font = letters(n, rng)
    sets = {
        "uniform noise": torch.rand(n, 1, 28, 28, generator=generator),
        "inverted digits": 1 - digits,
        "digits rotated 90 deg": torch.rot90(digits, 1, (2, 3)),
        "shuffled pixels": shuffled,
        "random strokes": strokes(n, rng),
        "letters": letter_images,
    }
    return sets, font


@torch.no_grad()
def score_all(module, x: torch.Tensor, k: int, desc: str, batch: int = 100) -> dict:
    """module.score over x in batches: {statistic: (N,) numpy}."""
    parts = [module.score(b, k) for b in tqdm(x.split(batch), desc=desc, dynamic_ncols=True)]
    return {name: torch.cat([p[i] for p in parts]).numpy() for i, name in enumerate(SCORE_OUTPUTS)}


def train_pixel_classifier(train: Digits, epochs: int, seed: int) -> torch.nn.Module:
    """An MLP on the pixels (784-512-256-10 for MNIST), trained on the training images."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(train.images[0].numel(), 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, int(train.labels.max()) + 1),
    )
    return train_grader(net, train, epochs)


def train_grader(net: torch.nn.Module, train: Digits, epochs: int) -> torch.nn.Module:
    """Trains a classifier of the training images' labels: Adam 1e-3, cosine, batch 128."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    for _ in tqdm(range(epochs), desc="pixel classifier", dynamic_ncols=True):
        for idx in torch.randperm(len(train.images)).split(128):
            loss = torch.nn.functional.cross_entropy(net(train.images[idx]), train.labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    return net.eval()


@torch.no_grad()
def conditional_samples(
    module, digit: int, n: int, temperature: float, seed: int, candidates: int | None = None
):
    """n decoded samples (means) of one digit, drawn as GET /sample?digit= does (with
    `candidates` per sample instead of the file's: 1 is the mixture alone)."""
    generator = torch.Generator().manual_seed(seed)
    candidates = (n, candidates or module.class_candidates)
    eps = torch.randn(*candidates, module.latent_dim, generator=generator)
    u = torch.rand(candidates, generator=generator)
    z = module.digit_latents(torch.full((n,), digit), eps, u, temperature)
    return module.decode(z)


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean L2 distance in pixel space between two different images of x (N, ...)."""
    flat = x.flatten(1).double()
    return (torch.cdist(flat, flat).sum() / (len(flat) * (len(flat) - 1))).item()


def grade(
    module,
    grader,
    test: Digits,
    n: int,
    temperature: float,
    seed: int,
    candidates: int | None = None,
) -> tuple[dict, dict, list]:
    """Per class: the share of n samples that `grader` calls the requested class, and their
    diversity (mean pairwise distance over that of n test images of the class); 10 per row."""
    per_digit, diversity, rows = {}, {}, []
    for digit in range(int(test.labels.max()) + 1):
        x = conditional_samples(module, digit, n, temperature, seed + digit, candidates)
        with torch.no_grad():
            per_digit[str(digit)] = (grader(x).argmax(-1) == digit).float().mean().item()
        reference = mean_pairwise_distance(test.images[test.labels == digit][:n])
        diversity[str(digit)] = mean_pairwise_distance(x) / reference
        rows.append(x[:10])
    return per_digit, diversity, rows


def plot_histograms(
    sets: dict[str, np.ndarray],
    bins: np.ndarray,
    path: Path,
    xlabel: str,
    title: str,
    line: tuple[float, str] | None = None,
) -> None:
    """Histograms of each set's values as shares of the set, the first drawn bold, on a log
    axis (the sets span orders of magnitude); `line`: a dashed line (x, label)."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, (name, values) in enumerate(sets.items()):
        values = np.clip(values, bins[0], bins[-1])
        weights = np.full(len(values), 1 / len(values))
        ax.hist(values, bins, weights=weights, histtype="step", lw=2.5 if i == 0 else 1.2,
                label=name)  # fmt: skip
    if line is not None:
        ax.axvline(line[0], color="black", ls="--", lw=1, label=line[1])
    ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel="share of the set", title=title)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_confusion(confusion: list[list[int]], accuracy: float, path: Path) -> None:
    counts = np.array(confusion)
    fig, ax = plt.subplots(figsize=(6, 5.4))
    shown = ax.imshow(np.log1p(counts), cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if value > counts.max() / 3 else "black",
        )
    ax.set(
        xticks=range(10),
        yticks=range(10),
        xlabel="predicted digit",
        ylabel="true digit",
        title=f"POST /classify on the 10,000 test digits: {100 * accuracy:.2f} %",
    )
    fig.colorbar(shown, ax=ax, label="log(1 + count)")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model", help="an exported file with the heads (vae-export)")
    p.add_argument("--n", type=int, default=1000, help="images per OOD set (default 1000)")
    p.add_argument("--n-test", type=int, default=2000, help="MNIST test digits (default 2000)")
    p.add_argument("--k", type=int, default=100, help="importance samples (default 100)")
    p.add_argument("--samples", type=int, default=500, help="samples per digit (default 500)")
    p.add_argument("--temperature", type=float, default=1.0, help="default 1.0")
    p.add_argument("--lower-temperature", type=float, default=0.8, help="also (default 0.8)")
    p.add_argument("--epochs", type=int, default=10, help="pixel classifier (default 10)")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    p.add_argument("--img", default="docs/img", help="pictures here (default docs/img)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    module, card = artifact.load(args.model)
    img = Path(args.img)
    img.mkdir(parents=True, exist_ok=True)
    train, test = Digits.load("train", args.data_dir), Digits.load("test", args.data_dir)

    sets, font = ood_sets(test.images, args.n, args.seed)
    test_scores = score_all(module, test.images[: args.n_test], args.k, "MNIST test")
    ood_scores = {name: score_all(module, x, args.k, name) for name, x in sets.items()}
    table = {
        name: {
            stat: auroc(SIGN[stat] * test_scores[stat], SIGN[stat] * scores[stat])
            for stat in STATISTICS
        }
        | {
            "median_log_likelihood": float(np.median(scores["log_likelihood"])),
            "typical_share": float(scores["typical"].mean()),
        }
        for name, scores in ood_scores.items()
    }
    plot_histograms(
        {
            name: -scores["log_likelihood"]
            for name, scores in {"MNIST test digits": test_scores, **ood_scores}.items()
        },
        np.geomspace(20, 1e6, 120),
        img / "score_histogram.png",
        xlabel="-log-likelihood from POST /score (IWAE, K=100, nats; log scale)",
        title="MNIST test digits vs generated out-of-distribution sets",
    )
    save_image(
        image_grid(torch.cat([x[:10] for x in sets.values()]), 10),
        img / "ood_sets.png",
        "Generated out-of-distribution sets (one row each)",
    )

    grader = train_pixel_classifier(train, args.epochs, args.seed)
    with torch.no_grad():
        grader_accuracy = (grader(test.images).argmax(-1) == test.labels).float().mean().item()
    per_digit, diversity, rows = grade(
        module, grader, test, args.samples, args.temperature, args.seed
    )
    lower, _, _ = grade(module, grader, test, args.samples, args.lower_temperature, args.seed)
    alone, alone_diversity, _ = grade(
        module, grader, test, args.samples, args.temperature, args.seed, candidates=1
    )
    save_image(
        image_grid(torch.cat(rows), 10),
        img / "digit_samples.png",
        f"GET /sample?digit=d (one row per digit, temperature {args.temperature:g})",
    )

    cap = card["capabilities"]
    plot_confusion(
        cap["confusion_matrix"], cap["classifier_test_accuracy"], img / "confusion_matrix.png"
    )
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python -m model.evaluate_heads", *given])
    evaluation = {
        "command": command,
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "ood": {
            "k": args.k,
            "n_test": args.n_test,
            "n_per_set": args.n,
            "letters_font": font,
            "median_test_log_likelihood": float(np.median(test_scores["log_likelihood"])),
            "test_typical_share": float(test_scores["typical"].mean()),
            "auroc": table,
        },
        "conditional_sampling": {
            "temperature": args.temperature,
            "samples_per_digit": args.samples,
            "grader": "MLP 784-512-256-10 on pixels, trained on the 60k training digits",
            "grader_test_accuracy": grader_accuracy,
            "accuracy_per_digit": per_digit,
            "accuracy": float(np.mean(list(per_digit.values()))),
            "candidates": module.class_candidates,
            "acceptance": module.class_acceptance.item(),
            "diversity_per_digit": diversity,
            "diversity": float(np.mean(list(diversity.values()))),
            "mixture_alone": {  # one candidate: no rejection, as before issue 26
                "accuracy_per_digit": alone,
                "accuracy": float(np.mean(list(alone.values()))),
                "diversity_per_digit": alone_diversity,
                "diversity": float(np.mean(list(alone_diversity.values()))),
            },
            "at_lower_temperature": {
                "temperature": args.lower_temperature,
                "accuracy_per_digit": lower,
                "accuracy": float(np.mean(list(lower.values()))),
            },
        },
    }
    cap["evaluation"] = {**cap.get("evaluation", {}), **evaluation}
    update_card(args.model, card)
    print(json.dumps(evaluation, indent=2))


if __name__ == "__main__":
    main()
