"""Export a trained VAE as one TorchScript file that carries its own model card.

    vae-export runs/vae/best.pt --eval runs/vae/eval.json --out model/vae_mnist.pt
    vae-export --from-torchscript model/vae_mnist.pt --version 1.1.0   # refit the heads only

The file loads with plain `torch.jit.load` (no project code needed; model/artifact.py's
`load` is the project's one loader) and offers encode, decode, decode_logits, reconstruct
and sample (see model/vae.py), and, unless --no-heads, score, classify and digit_latents
with heads fitted on MNIST at export time (model/heads.py, model/fit_heads.py).
`--from-torchscript` takes the VAE's weights and card from an exported file instead of a
training checkpoint (same parameter names). The card
(JSON: architecture, training config, dataset checksums, test figures, version,
creation date) is stored inside the file as the extra file `model_card.json`, readable
without running the model (`read_card`), and written beside it as JSON and Markdown.
"""

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import torch

from model import artifact
from model.data import MNIST_FILES
from model.vae import IMAGE_SHAPE, VAE, VAEConfig

SPOT_CHECK = {"n_images": 300, "k": 200, "seed": 0}  # a quick figure tests can reproduce
REQUIRED_METHODS = ("encode", "decode", "decode_logits", "reconstruct", "sample")
PUBLISHED = {  # test NLL (nats) on binarized MNIST, Burda et al. 2015, Table 1
    "VAE, 1 stochastic layer (Burda et al. 2015)": 86.76,
    "IWAE k=50, 1 stochastic layer (Burda et al. 2015)": 84.78,
    "VAE, 2 stochastic layers (Burda et al. 2015)": 85.33,
    "IWAE k=50, 2 stochastic layers (Burda et al. 2015)": 82.90,
}


ARCH_FIELDS = {
    "mlp": ("arch", "latent_dim", "hidden"),
    "conv": ("arch", "latent_dim", "channels", "conv_hidden"),
}
INPUTS = (
    "trained on binary images (each pixel drawn white with its grey level's probability, "
    "afresh every epoch); the service encodes grey levels in [0, 1] as they are, between "
    "the two: figures on grey inputs are not the binarized test figures below"
)


MNIST_CLASSES = [str(digit) for digit in range(10)]  # the heads' order: digit d is class d


def architecture(model_config: dict) -> dict:
    """The fields that describe this architecture (an MLP has no channels); the image shape,
    activation and likelihood only where they are not MNIST's defaults (e.g. dSprites'
    64x64, ReLU; a folder of colour images' discretised logistic)."""
    fields = {k: model_config[k] for k in ARCH_FIELDS[model_config["arch"]] if k in model_config}
    defaults = VAEConfig()
    for name in ("image_shape", "activation", "likelihood"):
        if name in model_config and model_config[name] != getattr(defaults, name):
            fields[name] = model_config[name]
    return fields


def build_card(model_config: dict, run: dict, metrics: dict, version: str) -> dict:
    return {
        "name": "vae-mnist",
        "version": version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "latent_dim": model_config["latent_dim"],
        "image_shape": list(IMAGE_SHAPE),
        "classes": MNIST_CLASSES,
        "preprocessor": "digit",  # app.digits: find the digit in a photo, make it MNIST-like
        "architecture": architecture(model_config),
        "inputs": INPUTS,
        "likelihood": "Bernoulli",
        "prior": "N(0, I)",
        "posterior": "diagonal Gaussian",
        "training": run,
        "dataset": {
            "name": "MNIST (dynamically binarized for training, fixed binarization for test)",
            "sha256": {spec.name: spec.sha256 for spec in MNIST_FILES.values()},
        },
        "metrics": metrics,
        "published_nll": PUBLISHED,
        "torch": torch.__version__,
    }


def export(model: VAE, card: dict, path: str | Path) -> Path:
    """Script the model on the CPU and save it with the card embedded."""
    return artifact.save(artifact.script(model), path, card)


def read_card(path: str | Path) -> dict:
    """The embedded card, read from the archive without loading the weights onto a device."""
    return artifact.load(path)[1]


def update_card(path: str | Path, card: dict) -> None:
    """Rewrite the card embedded in an exported file (weights untouched) and beside it."""
    path = Path(path)
    artifact.save(artifact.load(path)[0], path, card)
    write_card_files(path, card)


def write_card_files(path: Path, card: dict) -> None:
    """The card beside the model: model_card.json and MODEL_CARD.md for MNIST's,
    model_card_<data>.json and MODEL_CARD_<data>.md for another (vae-dsprites)."""
    suffix = "" if card["name"] == "vae-mnist" else "_" + card["name"].removeprefix("vae-")
    path.with_name(f"model_card{suffix}.json").write_text(json.dumps(card, indent=2) + "\n")
    path.with_name(f"MODEL_CARD{suffix}.md").write_text(card_markdown(card))


def load_torchscript_vae(path: str | Path) -> tuple[VAE, dict]:
    """The eager VAE inside an exported file (its weights are the module's state_dict, the
    architecture is in its card) and the card; heads, if any, are left out."""
    scripted, card = artifact.load(path)
    model = VAE(VAEConfig(**card["architecture"]))
    vae_keys = model.state_dict().keys()
    model.load_state_dict({k: v for k, v in scripted.state_dict().items() if k in vae_keys})
    return model.eval(), card


def capabilities_markdown(card: dict) -> str:
    """The card's section on score, classify and conditional sampling, if the file has them."""
    cap = card.get("capabilities")
    if not cap:
        return ""
    table = cap["test_log_likelihood"]
    pct = table["percentiles"]
    evaluation = cap.get("evaluation", {})
    lines = [
        "\n## Capabilities fitted at export time\n",
        f"Methods: {', '.join(f'`{m}`' for m in cap['methods'])}. Fitted by `{cap['command']}`"
        f" ({cap.get('minutes', 'n/a')} min on {cap.get('hardware', 'n/a')}).\n",
        f"- **classify**: an MLP head on mu (encoder frozen), test accuracy "
        f"**{100 * cap['classifier_test_accuracy']:.2f} %** (10,000 grey-level test digits; "
        "[confusion matrix](../docs/img/confusion_matrix.png)).",
        f"- **score**: IWAE log-likelihood of grey-level digits (expectation over "
        f"binarizations); MNIST test digits at K={table['k']}: median {table['median']:.1f}, "
        f"1st / 5th / 95th percentile {pct['1']:.1f} / {pct['5']:.1f} / {pct['95']:.1f} nats.",
        ood_text(cap, "validation digits"),
        f"- **conditional sampling**: a Gaussian mixture over mu per digit "
        f"({cap['config']['n_components']} full-covariance components, EM on the training "
        f"digits){rejection_text(cap)}.",
    ]
    if "re_exported" in card:
        spot = card["metrics"]["spot_check"]
        lines.append(
            f"\nRe-exported from the previous file by `{card['re_exported']}`: same VAE weights; "
            f"the spot check (first {spot['n_images']} test digits, K={spot['k']}, seed "
            f"{spot['seed']}) gives NLL {spot['nll']:.4f}, as before (vae-export refuses a "
            "difference over 0.001)."
        )
    if evaluation:
        lines.append(evaluation_markdown(evaluation))
    return "\n".join(lines) + "\n"


def ood_text(cap: dict, held_out: str = "held-out images") -> str:
    """The card's line on the OOD score behind `typical` (model/fit_heads.fit_ood)."""
    if "ood" not in cap:  # a card written before issue 26: typical was on the likelihood
        return f"- `typical` means log-likelihood >= {cap['typical_threshold']:.1f}."
    o = cap["ood"]
    return (
        f"- **out-of-distribution score** (`ood_score`, decides `typical`): {o['method']}, "
        f"fitted on {o['density_points']:,} of {o['fit_images']:,} training images at "
        f"K={o['k']}, calibrated on {o['held_out_images']:,} {held_out} (median "
        f"{o['percentiles']['50']:.2f}); `typical` means ood_score >= "
        f"{cap['typical_threshold']:.2f} (percentile {cap['config']['typical_percentile']:g} "
        "of those); [docs/capabilities.md](../docs/capabilities.md) says why this score."
    )


def rejection_text(cap: dict) -> str:
    """', with rejection: ...' when conditional samples are drawn with rejection."""
    candidates = cap["config"].get("class_candidates", 1)
    if candidates <= 1:
        return ""
    return (
        f", with rejection: of {candidates} draws, the first the classifier gives the class "
        f"with probability >= {cap['config']['class_acceptance']:g}"
    )


def evaluation_markdown(evaluation: dict) -> str:
    """The figures of model/evaluate_heads.py (and scripts/score_throughput.py) as tables."""
    if "ood" not in evaluation:
        return ""
    ood, cond = evaluation["ood"], evaluation["conditional_sampling"]
    median = ood["median_test_log_likelihood"]
    rows = "\n".join(
        f"| {name} | {a.get('ood_score', float('nan')):.3f} | {a['log_likelihood']:.3f} "
        f"| {a['elbo']:.3f} | {a['reconstruction']:.3f} "
        f"| {a['kl']:.3f} | {a['median_log_likelihood']:.1f} "
        f"| {100 * a.get('typical_share', float('nan')):.1f} |"
        for name, a in ood["auroc"].items()
    )
    digits = " | ".join(f"{100 * v:.1f}" for v in cond["accuracy_per_digit"].values())
    diversity = " | ".join(f"{v:.2f}" for v in cond.get("diversity_per_digit", {}).values())
    diversity_row = f"\n| diversity | {diversity} |" if diversity else ""
    lower = cond.get("at_lower_temperature")
    lower_text = (
        f" ({100 * lower['accuracy']:.1f} % at temperature {lower['temperature']:g})"
        if lower
        else ""
    )
    text = f"""
### Evaluation

Measured by `{evaluation["command"]}` ({evaluation["minutes"]} min, one thread of a busy
2-core machine).

Out-of-distribution detection: AUROC of each statistic as "higher = more like MNIST"
(-KL for the KL), {ood["n_test"]} MNIST test digits against {ood["n_per_set"]} images per
set, K={ood["k"]}; median log-likelihood of those test digits {median:.1f}.
Letters rendered from {ood["letters_font"]}.

| set | OOD score | log-likelihood | ELBO | reconstruction | -KL | median ll | typical, % |
|---|---|---|---|---|---|---|---|
{rows}

![score histogram](../docs/img/score_histogram.png)

Conditional sampling (`GET /sample?digit=d`, temperature {cond["temperature"]:g},
{cond["samples_per_digit"]} samples per digit): share classified as the requested digit by
a separate pixel classifier ({cond["grader"]}; {100 * cond["grader_test_accuracy"]:.2f} % on
the test digits): **{100 * cond["accuracy"]:.1f} %** overall{lower_text}. Diversity: the
samples' mean pairwise pixel distance over that of test digits of the same digit (1 = as
varied as real digits).

| digit | {" | ".join(cond["accuracy_per_digit"])} |
|---|{"---|" * len(cond["accuracy_per_digit"])}
| % | {digits} |{diversity_row}

![conditional samples](../docs/img/digit_samples.png)
"""
    if "throughput" in evaluation:
        t = evaluation["throughput"]
        text += f"""
`POST /score?k={t["k"]}` throughput: **{t["images_per_s"]:.0f} images/s** ({t["requests"]}
requests of one 28x28 PNG, {t["concurrency"]} concurrent, {t["seconds"]} s; {t["where"]};
measured by `{t["command"]}`).
"""
    return text


def checkpoint_text(training: dict) -> str:
    """'epoch 8, chosen by val_iwae_k50 = -85.12 (val_elbo -92.87)'."""
    c = training.get("checkpoint")
    if c is None:
        return f"epoch {training.get('best_epoch', 'n/a')}"
    key = c["selected_by"]
    others = ", ".join(f"{k} {v:.2f}" for k, v in c.items() if k.startswith("val_") and k != key)
    chosen = f" = {c[key]:.2f}" if isinstance(c.get(key), float) else ""
    return f"epoch {c['epoch']}, chosen by {key}{chosen}" + (f" ({others})" if others else "")


def card_markdown(card: dict) -> str:
    if card["name"] == "vae-dsprites":
        from model import dsprites_card

        return dsprites_card.card_markdown(card)
    from model import images_card

    if images_card.is_own(card):
        return images_card.card_markdown(card)
    m = card["metrics"]
    arch = card["architecture"]
    rows = "\n".join(f"| {name} | {nll:.2f} |" for name, nll in card["published_nll"].items())
    nll = m.get("test_nll_iwae")
    nll_text = f"**{nll:.2f}**" if nll is not None else "not evaluated"
    elbo = m.get("test_elbo")
    t = card["training"]
    widths = arch["hidden"] if arch["arch"] == "mlp" else arch["channels"]
    k = t["config"]["iw_samples"]
    objective = f"IWAE bound, k={k}" if k > 1 else "ELBO"
    stages = t.get("stages", [])
    # e.g. a long run, then fine-tuning: the config is the last stage's
    last_stage = " (last stage)" if stages else ""
    stage_lines = "".join(
        f"{i}. `{st['command']}` ({st['minutes']} min)\n" for i, st in enumerate(stages, 1)
    )
    stages_text = f"\nTraining stages:\n\n{stage_lines}" if stages else ""
    return f"""# Model card: {card["name"]} {card["version"]}

A variational autoencoder for binarized MNIST digits: a diagonal-Gaussian encoder
q(z|x), a Bernoulli decoder p(x|z), prior N(0, I), latent dimension {card["latent_dim"]}.

| | |
|---|---|
| architecture | {arch["arch"]}, widths {widths} |
| training objective | {objective}{last_stage} |
| epochs | {t["config"]["epochs"]}{last_stage} |
| checkpoint | {checkpoint_text(t)} |
| training time | {t.get("wall_time", "n/a")} on {t.get("hardware", "n/a")} |
| inputs | {card.get("inputs", INPUTS)} |
| created | {card["created"]} |

Reproduce: `{t.get("reproduce", t.get("command", ""))}`
{stages_text}
## Test set figures (fixed binarization of the 10,000 test images)

| figure | nats |
|---|---|
| NLL, IWAE bound with K={m.get("iwae_k", "n/a")} | {nll_text} |
| ELBO | {f"{elbo:.2f}" if elbo is not None else "not evaluated"} |

Measured with `{m.get("command", "vae-eval")}`.

Decoding a batch of 16 latents takes {m.get("decode_ms_batch16_1thread", "n/a")} ms (median,
one CPU thread, TorchScript, measured at export).
{capabilities_markdown(card)}
## Published single-model figures (test NLL, lower is better)

| model | NLL |
|---|---|
{rows}
"""


def spot_check(model, data_dir: str | None = None, x: torch.Tensor | None = None) -> dict:
    """IWAE NLL on the first test images (or `x`) with few samples: seconds to recompute, so
    the tests can check that the shipped file still scores what its card says."""
    from model.evaluate import evaluate, load_test_set

    torch.manual_seed(SPOT_CHECK["seed"])
    x = load_test_set(data_dir, SPOT_CHECK["n_images"]) if x is None else x
    result = evaluate(model.eval(), x, SPOT_CHECK["k"], progress=False)
    spot = {**SPOT_CHECK, "n_images": len(x)}
    return {**spot, "nll": result["test_nll_iwae"], "elbo": result["test_elbo"]}


def decode_latency_ms(model, batch: int = 16, repeats: int = 300) -> float:
    """Median wall time of one decode of `batch` latents on one CPU thread, in ms."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    scripted = artifact.script(model)
    z = torch.randn(batch, model.latent_dim)
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            scripted.decode(z)
            times.append(time.perf_counter() - start)
    torch.set_num_threads(threads)
    return round(sorted(times)[len(times) // 2] * 1000, 3)


def run_summary(run_dir: Path) -> dict:
    """What vae-train recorded about a run: its config.json plus the total training time."""
    info = run_dir / "config.json"
    run = json.loads(info.read_text()) if info.exists() else {}
    metrics = run_dir / "metrics.jsonl"
    if metrics.exists():
        seconds = sum(json.loads(line)["seconds"] for line in metrics.read_text().splitlines())
        run["wall_time"] = f"{seconds / 60:.0f} min"
    return run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoint", nargs="?", help="training checkpoint (e.g. runs/vae/best.pt)")
    p.add_argument("--from-torchscript", default=None, help="an exported file instead")
    p.add_argument("--eval", default=None, help="JSON written by vae-eval --out")
    p.add_argument("--run-info", default=None, help="extra JSON merged into the card's training")
    p.add_argument("--out", default="model/vae_mnist.pt", help="default: %(default)s")
    p.add_argument("--version", default="1.0.0", help="default: %(default)s")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    p.add_argument("--no-heads", action="store_true", help="export the bare VAE (no score...)")
    p.add_argument("--components", type=int, default=8, help="Gaussians per digit (default 8)")
    p.add_argument("--score-k", type=int, default=100, help="K of the score table (default 100)")
    args = p.parse_args(argv)
    if (args.checkpoint is None) == (args.from_torchscript is None):
        p.error("give a checkpoint or --from-torchscript FILE (one of them)")
    return args


def card_from_checkpoint(args: argparse.Namespace) -> tuple[VAE, dict]:
    from model.train import load_checkpoint

    model, state = load_checkpoint(args.checkpoint)
    run = run_summary(Path(args.checkpoint).parent)
    run.setdefault("config", state["config"])
    run["checkpoint"] = {  # the exported checkpoint's own figures, and how it was chosen
        "epoch": state["epoch"] + 1,
        "selected_by": state.get("selected_by", "val_elbo"),
        **state.get("val", {"val_elbo": state.get("best_val_elbo")}),
    }
    if args.run_info:
        run.update(json.loads(Path(args.run_info).read_text()))
    metrics = json.loads(Path(args.eval).read_text()) if args.eval else {}
    if state["config"].get("dataset") == "dsprites":
        from model import dsprites_card

        images = state["config"]["epochs"] * state["config"]["epoch_images"]
        run["images_seen"] = images * run["checkpoint"]["epoch"] // state["config"]["epochs"]
        return model, dsprites_card.build_card(state["config"]["model"], run, metrics, args.version)
    if state["config"].get("dataset") == "images":  # vae-train --images: model/images_card.py
        from model import images_card

        return model, images_card.build_card(state["config"], run, metrics, args.version)
    return model, build_card(state["config"]["model"], run, metrics, args.version)


def with_heads(vae: VAE, card: dict, args: argparse.Namespace, command: str) -> tuple:
    """The VAE with fitted heads, and the card with their figures under `capabilities`."""
    from model import images_card
    from model.fit_heads import Digits, HeadsConfig, OODImages, fit_heads
    from model.heads import CAPABILITIES

    started = time.perf_counter()
    cfg = HeadsConfig(n_components=args.components, score_k=args.score_k)
    if images_card.is_own(card):  # the run's own images; without classes the score alone
        model, figures = images_card.fit(vae, card, cfg)
    else:
        if card["name"] == "vae-dsprites":  # 3 shapes, held-out factor combinations
            from model import dsprites_card

            cfg.score_images, cfg.classifier_noise = dsprites_card.SCORE_IMAGES, 0.0
            # 64x64 convolutions at K=50: 1,000 images each (~3 min) instead of 2,000/5,000
            cfg.ood_fit_images = cfg.ood_table_images = dsprites_card.SCORE_IMAGES
            train, test = dsprites_card.heads_data(cfg.seed)
            ood_images = None  # fitted on the heads' training shapes, calibrated on held-out
        else:
            train, test = Digits.load("train", args.data_dir), Digits.load("test", args.data_dir)
            ood_images = OODImages.mnist(args.data_dir)
        n_classes = len(card.get("classes", range(10)))
        model, figures = fit_heads(
            vae, card["architecture"], train, test, cfg, n_classes, ood_images
        )
        figures["methods"] = ["score", "percentile", "classify", "digit_latents"]
    figures["provides"] = [c for c, method in CAPABILITIES.items() if method in figures["methods"]]
    figures["command"] = command
    figures["minutes"] = round((time.perf_counter() - started) / 60, 1)
    figures["hardware"] = f"{torch.get_num_threads()} CPU thread(s), shared machine"
    previous = card.get("capabilities", {})
    if "evaluation" in previous:  # measured by model/evaluate_heads.py
        figures["evaluation_of_previous_export"] = previous["evaluation"]
    return model, {**card, "capabilities": figures}


def main(argv: list[str] | None = None) -> None:
    from model.images import FolderError

    try:
        export_main(argv)
    except FolderError as e:  # a run on your own images whose folder moved or changed
        raise SystemExit(f"vae-export: {e}") from None


def export_main(argv: list[str] | None = None) -> None:
    from model import images_card

    args = parse_args(argv)
    command = " ".join(["vae-export", *(argv if argv is not None else sys.argv[1:])])
    if args.from_torchscript:
        model, card = load_torchscript_vae(args.from_torchscript)
        card = {**card, "version": args.version, "re_exported": command}
        card["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    else:
        model, card = card_from_checkpoint(args)
    metrics = card["metrics"]
    if card["name"] == "vae-dsprites":
        from model import dsprites_card

        spot = spot_check(model, x=dsprites_card.spot_check_images())
    elif images_card.is_own(card):
        if Path(args.out) == Path("model/vae_mnist.pt"):  # --out's default: the shipped file
            raise SystemExit("vae-export: give --out FILE (the default is the MNIST model's)")
        spot = spot_check(model, x=images_card.spot_check_images(card))
        spot["bits_per_dim"] = images_card.bits_per_dim(spot["nll"], card)
    else:
        spot = spot_check(model, args.data_dir)
    if "spot_check" in metrics and abs(metrics["spot_check"]["nll"] - spot["nll"]) > 1e-3:
        raise SystemExit(f"spot-check NLL {spot['nll']} differs from the card's: other weights?")
    metrics["spot_check"] = spot
    if not args.from_torchscript:  # same network when re-exporting: keep the measured figure
        metrics["decode_ms_batch16_1thread"] = decode_latency_ms(model)
    if not args.no_heads:
        model, card = with_heads(model, card, args, command)
    out = export(model, card, args.out)
    write_card_files(out, card)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and its card")


if __name__ == "__main__":
    main()
