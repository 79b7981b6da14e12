"""Which out-of-distribution score should POST /score use? (issue 26, part 1)

    OMP_NUM_THREADS=1 python -m model.evaluate_ood model/vae_mnist.pt   # 0.4 min, one thread

Compares the scores of model/ood.py on a shipped model: the raw IWAE log-likelihood (the
baseline), input complexity with PNG, bz2 and lzma (Serra et al. 2020), likelihood ratios
against a local-context and a pixel-independent background (Ren et al. 2019), and
typicality tests (DoSE, Morningstar et al. 2021): a Gaussian or a kernel density over
(log-likelihood, reconstruction, KL[, context-background log-likelihood[, PNG bits]]).

Data, all disjoint: the backgrounds and the typicality Gaussian are fitted on the model's
training split (model.data.split_train_val, seed 0), thresholds are set on its validation
split (which the VAE never trained on), and MNIST test digits are the in-distribution set
the AUROCs and false rejections are measured on. Out-of-distribution sets are generated
here: letters from tuning fonts and from held-out fonts (never looked at while choosing),
random strokes, test digits rotated 90 and 180 degrees, uniform noise, shuffled digits,
blank-ish images (a faint short line), dSprites sprites resized to 28x28, and two
photo-like sets drawn dark on white at 112x112 (letters, strokes).

Every image takes the upload path, as POST /score sees it: PNG bytes through
app.imaging.preprocess (the digit finder: polarity, and the no-digit rule that refuses a
share of some sets, reported as `refused`). AUROCs of the raw tensors (no preprocessing)
are reported too. Cost: ms per image on one thread, the VAE's score at K included.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from model import artifact, dsprites, ood
from model.data import load_mnist, split_train_val, to_unit
from model.evaluate_heads import plot_histograms, render_letters, strokes
from model.heads import SCORE_OUTPUTS

FONTS = Path("/usr/share/fonts/truetype")
TUNING_FONTS = (  # looked at while choosing the method
    "dejavu/DejaVuSans.ttf",
    "dejavu/DejaVuSans-Bold.ttf",
    "dejavu/DejaVuSerif.ttf",
    "dejavu/DejaVuSans-Oblique.ttf",
    "dejavu/DejaVuSansCondensed.ttf",
)
HELD_OUT_FONTS = (  # reported only
    "liberation/LiberationSerif-Regular.ttf",
    "liberation/LiberationSerif-Italic.ttf",
    "liberation/LiberationMono-Regular.ttf",
    "liberation/LiberationSans-Regular.ttf",
    "liberation/LiberationSansNarrow-Bold.ttf",
    "dejavu/DejaVuSansMono.ttf",
)
MAX_PIXELS = 10_000_000
METHODS = {  # name -> what it is, for the table
    "log_likelihood": "raw IWAE log-likelihood (baseline)",
    "complexity_png": "input complexity, PNG",
    "complexity_bz2": "input complexity, bz2",
    "complexity_lzma": "input complexity, lzma",
    "complexity_png_binary": "input complexity, PNG of the image thresholded at 0.5",
    "ratio_context": "likelihood ratio, local-context background",
    "ratio_pixel": "likelihood ratio, pixel-independent background",
    "typicality": "typicality (ll, reconstruction, KL), Mahalanobis",
    "typicality_context": "typicality (ll, reconstruction, KL, background ll), Mahalanobis",
    "typicality_all": "typicality (ll, reconstruction, KL, background ll, PNG bits)",
    "typicality_context_kde": "typicality (ll, reconstruction, KL, background ll), kernel density",
    "typicality_all_kde": "typicality (the same and PNG bits), kernel density",
    "served": "the file's own ood_score: typicality (+ ctx, grey share), KDE, fitted at export",
}


def faint_lines(n: int, rng: np.random.Generator) -> torch.Tensor:
    """A faint short line (4-8 px, grey 0.15-0.6) near the centre: blank-ish images that
    the digit finder still accepts."""
    images = []
    for _ in range(n):
        canvas = Image.new("L", (28, 28), 0)
        x0, y0 = (int(v) for v in rng.integers(10, 18, 2))
        length, angle = rng.integers(4, 9), rng.uniform(0, np.pi)
        end = (x0 + length * np.cos(angle), y0 + length * np.sin(angle))
        grey = int(255 * rng.uniform(0.15, 0.6))
        ImageDraw.Draw(canvas).line([(x0, y0), end], fill=grey, width=int(rng.integers(1, 3)))
        images.append(np.asarray(canvas, dtype=np.float32) / 255)
    return torch.from_numpy(np.stack(images)).unsqueeze(1)


def photo_like(x28: torch.Tensor, side: int = 112) -> torch.Tensor:
    """White-on-black 28x28 drawings scaled to side x side, dark ink on light paper."""
    big = F.interpolate(x28, size=(side, side), mode="bilinear", align_corners=False)
    return 0.95 - 0.85 * big.clamp(0, 1)


def sprites(n: int, rng: np.random.Generator) -> torch.Tensor:
    """dSprites images (64x64, binary) area-resampled to 28x28."""
    index = np.sort(rng.choice(dsprites.N_IMAGES, n, replace=False))
    return F.adaptive_avg_pool2d(F.interpolate(dsprites.images(index), size=(56, 56)), 28)


def ood_sets(test: torch.Tensor, n: int, seed: int) -> dict[str, torch.Tensor]:
    """The out-of-distribution sets, n images each, in [0, 1]; 28x28 unless photo-like."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    held_out = [FONTS / f for f in HELD_OUT_FONTS]
    digits = test[-n:]  # the in-distribution set uses the first test digits
    shuffled = torch.stack([x.flatten()[torch.randperm(x.numel(), generator=generator)]
                            for x in digits]).view_as(digits)  # fmt: skip
    return {
        "letters (tuning fonts)": render_letters([FONTS / f for f in TUNING_FONTS], n, rng),
        "letters (held-out fonts)": render_letters(held_out, n, rng),
        "letters, photo-like (held-out fonts)": render_letters(
            held_out, n, rng, side=112, size=(60, 90), ink=40, paper=235
        ),
        "random strokes": strokes(n, rng),
        "strokes, photo-like": photo_like(strokes(n, rng)),
        "digits rotated 90 deg": torch.rot90(digits, 1, (2, 3)),
        "digits rotated 180 deg": torch.rot90(digits, 2, (2, 3)),
        "uniform noise": torch.rand(n, 1, 28, 28, generator=generator),
        "shuffled digits": shuffled,
        "blank-ish (faint short line)": faint_lines(n, rng),
        "dSprites sprites (28x28)": sprites(n, rng),
    }


def upload(images: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Each image as PNG bytes through the service's preprocessor: (M, 1, 28, 28) accepted
    images and the number refused (no_digit)."""
    from app.errors import APIError
    from app.imaging import preprocess, to_png

    kept, refused = [], 0
    for x in images[:, 0].numpy():
        try:
            kept.append(preprocess(to_png(x), MAX_PIXELS))
        except APIError:
            refused += 1
    return torch.from_numpy(np.stack(kept)) if kept else torch.zeros(0, 1, 28, 28), refused


@torch.no_grad()
def statistics(module, x: torch.Tensor, k: int, fitted: dict, batch: int = 100) -> dict:
    """The VAE's score and every method's ingredients, (N,) each."""
    if len(x) == 0:
        return {}
    parts = [module.score(b, k) for b in x.split(batch)]
    elbo, reconstruction, kl, ll = (torch.cat([p[i] for p in parts]).double() for i in range(4))
    s = {"log_likelihood": ll, "reconstruction": reconstruction, "kl": kl}
    s["served"] = torch.cat([p[SCORE_OUTPUTS.index("ood_score")] for p in parts]).double()
    s["typical"] = torch.cat([p[SCORE_OUTPUTS.index("typical")] for p in parts])
    for codec in ("png", "bz2", "lzma"):
        s[f"{codec}_bits"] = ood.compressed_bits(x, codec)
        s[f"complexity_{codec}"] = ood.input_complexity(ll, s[f"{codec}_bits"])
    binary_bits = ood.compressed_bits(x, "png", binary=True)
    s["complexity_png_binary"] = ood.input_complexity(ll, binary_bits)
    s["context"] = ood.context_log_likelihood(x, fitted["context"]).double()
    s["ratio_context"] = ll - s["context"]
    s["ratio_pixel"] = ll - ood.pixel_log_likelihood(x, fitted["pixel"]).double()
    return s


TYPICALITY = {  # method -> the statistics it tests
    "typicality": ("log_likelihood", "reconstruction", "kl"),
    "typicality_context": ("log_likelihood", "reconstruction", "kl", "context"),
    "typicality_all": ("log_likelihood", "reconstruction", "kl", "context", "png_bits"),
}
KDE = {  # the same statistics with a kernel density instead of one Gaussian
    "typicality_context_kde": TYPICALITY["typicality_context"],
    "typicality_all_kde": TYPICALITY["typicality_all"],
}


def summary(s: dict, names: tuple[str, ...]) -> torch.Tensor:
    return torch.stack([s[name] for name in names], 1)  # (N, S)


def with_typicality(s: dict, fitted: dict) -> dict:
    """Adds the typicality methods (their densities fitted on training statistics)."""
    for method, names in TYPICALITY.items():
        if s:
            s[method] = ood.typicality(summary(s, names), *fitted[method])
    for method, names in KDE.items():
        if s:
            s[method] = ood.kde_log_density(summary(s, names), *fitted[method])
    return s


@torch.no_grad()
def costs(module, x: torch.Tensor, k: int, fitted: dict, repeats: int = 3) -> dict:
    """ms per image on one thread: the VAE's score at k (batch 100) and each method's extra."""

    def per_image(fn) -> float:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        return 1000 * best / len(x)

    base = per_image(lambda: [module.score(b, k) for b in x.split(100)])
    s = statistics(module, x, k, fitted)
    five = summary(s, TYPICALITY["typicality_all"])
    parts = [s[name].float() for name in ("log_likelihood", "reconstruction", "kl")]

    def served() -> None:  # what the file's score adds to the likelihood's
        module.ood_score(module.ood_statistics(x, *parts))

    extra = {
        "log_likelihood": 0.0,
        "complexity_png": per_image(lambda: ood.compressed_bits(x, "png")),
        "complexity_bz2": per_image(lambda: ood.compressed_bits(x, "bz2")),
        "complexity_lzma": per_image(lambda: ood.compressed_bits(x, "lzma")),
        "complexity_png_binary": per_image(lambda: ood.compressed_bits(x, "png", binary=True)),
        "ratio_context": per_image(lambda: ood.context_log_likelihood(x, fitted["context"])),
        "ratio_pixel": per_image(lambda: ood.pixel_log_likelihood(x, fitted["pixel"])),
        "typicality": 0.0,  # three numbers the score already gives; a 3x3 product
        "typicality_context": per_image(lambda: ood.context_log_likelihood(x, fitted["context"])),
        "typicality_all": per_image(
            lambda: (ood.context_log_likelihood(x, fitted["context"]), ood.compressed_bits(x))
        ),
        "typicality_context_kde": per_image(
            lambda: (
                ood.context_log_likelihood(x, fitted["context"]),
                ood.kde_log_density(five[:, :4], *fitted["typicality_context_kde"]),
            )
        ),
        "typicality_all_kde": per_image(
            lambda: (
                ood.context_log_likelihood(x, fitted["context"]),
                ood.compressed_bits(x),
                ood.kde_log_density(five, *fitted["typicality_all_kde"]),
            )
        ),
        "served": per_image(served),
    }
    return {"vae_score_ms": base, "extra_ms": extra}


SHOWN = (  # the sets drawn in the histogram, beside the test digits (noise, shuffled digits
    # and sprites lie beyond 10^4, apart from every digit)
    "letters (held-out fonts)",
    "random strokes",
    "digits rotated 90 deg",
    "digits rotated 180 deg",
    "blank-ish (faint short line)",
)


def plot_served(scores: dict, threshold: float, path: Path) -> None:
    """Histograms of the served ood_score (as -ood_score, log axis) of the test digits and
    some sets, through the upload path, with the `typical` threshold."""
    plot_histograms(
        {name: -scores[name]["served"].numpy() for name in ("MNIST test", *SHOWN)},
        np.geomspace(1, 1e4, 100),
        path,
        xlabel="-ood_score from POST /score (K=100; log scale): right = less like MNIST",
        title="The out-of-distribution score of test digits and generated sets",
        line=(-threshold, "`typical` left of this line"),
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model", help="an exported file with the score (vae-export)")
    p.add_argument("--n", type=int, default=300, help="images per OOD set (default 300)")
    p.add_argument("--n-test", type=int, default=1000, help="MNIST test digits (default 1000)")
    p.add_argument("--n-val", type=int, default=1000, help="threshold digits (default 1000)")
    p.add_argument("--n-fit", type=int, default=2000, help="typicality fit (default 2000)")
    p.add_argument("--k", type=int, default=50, help="importance samples (default 50)")
    p.add_argument("--rejection", type=float, default=0.01, help="of val digits (default 0.01)")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    p.add_argument("--json", default=None, help="write the figures here too")
    p.add_argument("--img", default="docs/img", help="the histogram goes here (default docs/img)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    module, _ = artifact.load(args.model)
    images, labels = load_mnist("train", args.data_dir)
    (fit_images, _), (val_images, _) = split_train_val(images, labels)
    fit, val = to_unit(fit_images), to_unit(val_images)
    test = to_unit(load_mnist("test", args.data_dir)[0])
    print(f"fitting the backgrounds on {len(fit)} training digits", flush=True)
    fitted = {"context": ood.fit_context_background(fit), "pixel": ood.fit_pixel_background(fit)}
    s = statistics(module, fit[: args.n_fit], args.k, fitted)
    for method, names in TYPICALITY.items():
        fitted[method] = ood.fit_gaussian(summary(s, names))
    for method, names in KDE.items():
        fitted[method] = ood.fit_kde(summary(s, names))

    sets = ood_sets(test, args.n, args.seed)
    raw = {"MNIST validation (thresholds)": val[: args.n_val], "MNIST test": test[: args.n_test]}
    raw |= sets
    scores, refused, raw_scores = {}, {}, {}
    for name, x in raw.items():
        t = time.perf_counter()
        accepted, refused[name] = upload(x)
        scores[name] = with_typicality(statistics(module, accepted, args.k, fitted), fitted)
        if x.shape[-1] == 28 and not name.startswith("MNIST validation"):
            raw_scores[name] = with_typicality(statistics(module, x, args.k, fitted), fitted)
        print(f"{name}: {len(accepted)} scored, {refused[name]} refused "
              f"({time.perf_counter() - t:.1f} s)", flush=True)  # fmt: skip

    inliers, val_scores = scores["MNIST test"], scores["MNIST validation (thresholds)"]
    thresholds = {m: ood.threshold_at(val_scores[m], args.rejection) for m in METHODS}
    table = {
        name: {m: ood.auroc(inliers[m], s[m]) if s else None for m in METHODS}
        for name, s in scores.items()
        if not name.startswith("MNIST")
    }
    raw_table = {
        name: {m: ood.auroc(raw_scores["MNIST test"][m], s[m]) for m in METHODS}
        for name, s in raw_scores.items()
        if name != "MNIST test"
    }
    rejected = {  # share of each set below each threshold (for MNIST test: false rejections)
        name: {m: float((s[m] < thresholds[m]).double().mean()) if s else None for m in METHODS}
        for name, s in scores.items()
    }
    not_typical = {  # at the file's own threshold: what POST /score answers
        name: float((~s["typical"]).double().mean()) if s else None for name, s in scores.items()
    }
    cost = costs(module, test[:200], args.k, fitted)
    Path(args.img).mkdir(parents=True, exist_ok=True)
    plot_served(scores, module.typical_threshold.item(), Path(args.img) / "ood_score.png")
    result = {
        "command": " ".join(["python -m model.evaluate_ood", *(argv or sys.argv[1:])]),
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "k": args.k,
        "sizes": {name: len(x) for name, x in raw.items()},
        "refused_by_preprocessor": refused,
        "auroc_upload_path": table,
        "auroc_raw_tensors": raw_table,
        "threshold_rejection_on_validation": args.rejection,
        "rejected_at_threshold": rejected,
        "served_not_typical": not_typical,
        "cost": cost,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
