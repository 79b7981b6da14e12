"""The dSprites model's card and export-time data: what vae-export needs beside the MNIST path.

    vae-export runs/dsprites/best.pt --out model/vae_dsprites.pt    # the card comes from here
    python -m model.evaluate_dsprites model/vae_dsprites.pt         # adds the figures to it

The card keeps the MNIST card's layout (model/export.py build_card) and adds, at its top
level, what the service reads to serve another image type: `classes` (the heads' order)
and `preprocessor` ("resize": an upload is resized to image_shape, no digit centring).
"""

import datetime as dt

import numpy as np
import torch

from model import dsprites
from model.fit_heads import Digits

NAME = "vae-dsprites"
CLASSES = list(dsprites.SHAPES)
PREPROCESSOR = "resize"
HEADS_TRAIN = 40_000  # training combinations the classifier and mixtures are fitted on
HEADS_TEST = 10_000  # held-out combinations the classifier is tested on
# Decoding is the cost: ~300 rows/s of the 64x64 decoder on one busy thread (its transposed
# convolutions), so the score table (images x K rows) and spot check are kept small.
SCORE_IMAGES = 1_000  # held-out combinations behind the score table (at vae-export --score-k)
SPOT_CHECK_IMAGES = 100  # at K=200 (export.SPOT_CHECK)
INPUTS = (
    "trained on binary 64x64 images rendered from dSprites' factors (model/dsprites.py); "
    "grey levels in [0, 1] are encoded as they are"
)
# Published MIG of beta-VAEs on dSprites (higher is better; DeepMind's file, 300k steps of
# batch 64 = 19M images, ~15x what this model saw), read off the papers' plots, so
# approximate: Chen et al. 2018 (the beta-TCVAE paper, MIG against beta); Locatello et al.
# 2019 (distributions over 50 seeds per setting, beta in 1..16, wide spread).
PUBLISHED_MIG = {
    "beta-VAE (Chen et al. 2018, MIG against beta; read off the plot)": "about 0.1-0.3",
    "beta-VAE (Locatello et al. 2019, spread over seeds; read off the plot)": "about 0.05-0.35",
}


def build_card(model_config: dict, run: dict, metrics: dict, version: str) -> dict:
    from model.export import architecture

    train, test = dsprites.split()
    return {
        "name": NAME,
        "version": version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "latent_dim": model_config["latent_dim"],
        "image_shape": list(model_config["image_shape"]),
        "classes": CLASSES,
        "preprocessor": PREPROCESSOR,
        "architecture": architecture(model_config),
        "inputs": INPUTS,
        "likelihood": "bernoulli",  # as issue 23 spells it (MNIST's card: "Bernoulli")
        "prior": "N(0, I)",
        "posterior": "diagonal Gaussian",
        "training": run,
        "dataset": {
            "name": "dSprites, rendered from its factors (model/dsprites.py; docs/dsprites.md)",
            "factors": dict(zip(dsprites.FACTOR_NAMES, dsprites.FACTOR_SIZES, strict=True)),
            "n_images": dsprites.N_IMAGES,
            "test": f"{len(test)} combinations held out ({dsprites.TEST_FRACTION:.0%}, "
            f"seed {dsprites.SPLIT_SEED}); {len(train)} for training and validation",
        },
        "metrics": metrics,
        "published_mig": PUBLISHED_MIG,
        "torch": torch.__version__,
    }


def held_out(n: int, seed: int = 0) -> np.ndarray:
    """n held-out indices, a fixed random choice in random order (not sorted: the index
    orders by shape, then scale, so any prefix of a sorted choice would be small squares)."""
    _, test = dsprites.split()
    return np.random.default_rng(seed).choice(test, n, replace=False)


def labelled(index: np.ndarray) -> Digits:
    """Images of these indices and their shape labels."""
    labels = torch.from_numpy(dsprites.factors_of(index)[:, 0]).long()
    return Digits(dsprites.images(index), labels)


def heads_data(seed: int = 0) -> tuple[Digits, Digits]:
    """(train, test) sets of fit_heads: random training and held-out combinations."""
    train, _ = dsprites.split()
    train_index = np.sort(np.random.default_rng(seed).choice(train, HEADS_TRAIN, replace=False))
    return labelled(train_index), labelled(held_out(HEADS_TEST, seed))


def spot_check_images() -> torch.Tensor:
    return dsprites.images(held_out(SPOT_CHECK_IMAGES))


def card_markdown(card: dict) -> str:
    from model.export import checkpoint_text, ood_text, rejection_text

    m, arch, t = card["metrics"], card["architecture"], card["training"]
    cfg = t["config"]
    ev = card.get("evaluation", {})
    cap = card.get("capabilities", {})
    lines = [
        f"# Model card: {card['name']} {card['version']}\n",
        "A beta-VAE for dSprites (Matthey et al. 2017), rendered here from its factors: a "
        "diagonal-Gaussian encoder q(z|x), a Bernoulli decoder p(x|z), prior N(0, I), latent "
        f"dimension {card['latent_dim']}, images {card['image_shape']}, classes "
        f"{card['classes']}, preprocessor `{card['preprocessor']}`. Data and what differs from "
        "DeepMind's file: [docs/dsprites.md](../docs/dsprites.md).\n",
        "| | |",
        "|---|---|",
        f"| architecture | conv, channels {arch['channels']}, dense {arch['conv_hidden']}, "
        f"{arch.get('activation', 'gelu')} (Burgess et al. 2018; disentanglement_lib) |",
        f"| training objective | -ELBO with beta = {cfg['beta']:g} on the KL (Higgins et al. "
        f"2017), KL weight warmed up over the first {cfg['kl_warmup_epochs']} epoch(s) |",
        f"| images seen | {t.get('images_seen', 0):,} ({cfg['epochs']} epochs of "
        f"{cfg['epoch_images']:,} images, batch {cfg['batch_size']}, Adam {cfg['lr']:g} cosine to "
        f"{cfg['min_lr']:g}) |",
        f"| checkpoint | {checkpoint_text(t)} |",
        f"| training time | {t.get('wall_time', 'n/a')} on {t.get('hardware', 'n/a')} |",
        f"| inputs | {card.get('inputs', INPUTS)} |",
        f"| created | {card['created']} |",
        f"\nTrain: `{t.get('command', '')}` (scripts/reproduce_model.sh)\n",
    ]
    if "schedule_as_run" in t:
        lines.append(f"As run: {t['schedule_as_run']}.\n")
    if "test_nll_iwae" in m:
        lines += [
            f"## Held-out combinations ({m['n_images']} images)\n",
            "| figure | nats |",
            "|---|---|",
            f"| NLL, IWAE bound with K={m['iwae_k']} | **{m['test_nll_iwae']:.2f}** |",
            f"| ELBO (beta = 1) | {m['test_elbo']:.2f} |",
            f"\nMeasured with `{m.get('command', 'python -m model.evaluate_dsprites')}`.\n",
        ]
    if ev:
        lines.append(evaluation_markdown(ev))
    if cap:
        pct = cap["test_log_likelihood"]["percentiles"]
        lines += [
            "\n## Capabilities fitted at export time\n",
            f"Methods: {', '.join(f'`{x}`' for x in cap['methods'])} (`digit_latents` samples "
            f"a class: 0 = square, 1 = ellipse, 2 = heart). Fitted by `{cap['command']}` "
            f"({cap.get('minutes', 'n/a')} min on {cap.get('hardware', 'n/a')}).\n",
            f"- **classify**: an MLP head on mu (encoder frozen), trained on mu of {HEADS_TRAIN} "
            f"training combinations; accuracy on {HEADS_TEST} held-out ones "
            f"**{100 * cap['classifier_test_accuracy']:.2f} %**; confusion "
            f"{cap['confusion_matrix']} (rows: true {card['classes']}).",
            f"- **score**: IWAE log-likelihood, table of {SCORE_IMAGES} held-out images at "
            f"K={cap['test_log_likelihood']['k']}: median "
            f"{cap['test_log_likelihood']['median']:.1f}, 1st / 5th / 95th percentile "
            f"{pct['1']:.1f} / {pct['5']:.1f} / {pct['95']:.1f} nats.",
            ood_text(cap, "held-out combinations"),
            f"- **conditional sampling**: a Gaussian mixture over mu per shape "
            f"({cap['config']['n_components']} full-covariance components, EM)"
            f"{rejection_text(cap)}.",
        ]
    lines += [
        "\n## Published beta-VAE figures on dSprites (MIG, higher is better)\n",
        "| model | MIG |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in card.get("published_mig", PUBLISHED_MIG).items()),
    ]
    return "\n".join(lines) + "\n"


def evaluation_markdown(ev: dict) -> str:
    r2, mig = ev["r2_linear"], ev["mig"]
    figures = [
        ("R² of a linear read-out of mu, position x (>= 0.95)", r2["position_x"]),
        ("R² of a linear read-out of mu, position y (>= 0.95)", r2["position_y"]),
        ("R² of a linear read-out of mu, scale (>= 0.8)", r2["scale"]),
        ("shape accuracy of the classifier head (>= 0.95)", ev["shape_accuracy"]),
        (f"MIG (Chen et al. 2018; {mig['bins']} bins, over the 5 factors)", mig["mig"]),
    ]
    table = "\n".join(f"| {name} | **{value:.3f}** |" for name, value in figures)
    if "r2_mlp" in ev:  # the same factors through a small MLP: is the information there at all
        nonlinear = ", ".join(f"{k} {v:.3f}" for k, v in ev["r2_mlp"].items())
        table += f"\n| R² of an MLP read-out (D-64-64-1) of mu: {nonlinear} | |"
    dims = "\n".join(
        f"| {d['dim']} | {d['kl']:.2f} | {d['factor']} | {d['mi_share']:.2f} |" for d in ev["dims"]
    )
    per_factor = ", ".join(f"{k} {v:.3f}" for k, v in mig["per_factor"].items())
    by_scale = ", ".join(f"{k}: {v:.3f}" for k, v in ev.get("shape_accuracy_by_scale", {}).items())
    return f"""
## Figures

Measured by `{ev["command"]}` ({ev.get("minutes", "n/a")} min, one thread of a busy 2-core
machine) on {ev["n_images"]} held-out combinations (goals of issue 23 in brackets):

| figure | value |
|---|---|
{table}

MIG per factor: {per_factor}. Shape accuracy by scale: {by_scale or "n/a"}.

Latent dimensions by KL (nats, held-out mean), the factor each carries most information
about, and that information's share of the factor's entropy:

| dim | KL | factor | MI / H |
|---|---|---|---|
{dims}

{shapes_markdown(ev.get("shapes_on_demand"))}
![traversal](../docs/img/dsprites_traversal.png)
![reconstructions](../docs/img/dsprites_reconstructions.png)
![samples](../docs/img/dsprites_samples.png)
"""


def shapes_markdown(shapes: dict | None) -> str:
    """The table of shapes on demand (model/evaluate_dsprites.conditional_sampling)."""
    if not shapes:
        return ""
    alone = shapes["mixture_alone"]
    rows = "\n".join(
        f"| {name} | {100 * shapes['accuracy_per_shape'][name]:.1f} "
        f"| {shapes['diversity_per_shape'][name]:.2f} "
        f"| {100 * alone['accuracy_per_shape'][name]:.1f} "
        f"| {alone['diversity_per_shape'][name]:.2f} |"
        for name in shapes["accuracy_per_shape"]
    )
    return f"""
Shapes on demand (`GET /sample?class=NAME`, temperature {shapes["temperature"]:g},
{shapes["samples_per_shape"]} samples per shape), graded by {shapes["grader"]}
({100 * shapes["grader_accuracy_held_out"]:.1f} % on held-out images); diversity: mean
pairwise pixel distance over that of held-out images of the shape (1 = as varied):

| shape | served, % | diversity | mixture alone, % | diversity |
|---|---|---|---|---|
{rows}

Served: of {shapes["candidates"]} draws, the first the classifier head gives the shape with
probability >= {shapes["acceptance"]:g}.

![shapes on demand](../docs/img/dsprites_shape_samples.png)
"""
