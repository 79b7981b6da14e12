"""Export a trained VAE as one TorchScript file that carries its own model card.

    vae-export runs/vae/best.pt --eval runs/vae/eval.json --out model/vae_mnist.pt

The file loads with plain `torch.jit.load` (no project code needed; model/artifact.py's
`load` is the project's one loader) and offers
encode, decode, decode_logits, reconstruct and sample (see model/vae.py). The card
(JSON: architecture, training config, dataset checksums, test figures, version,
creation date) is stored inside the file as the extra file `model_card.json`, readable
without running the model (`read_card`), and written beside it as JSON and Markdown.
"""

import argparse
import datetime as dt
import json
from pathlib import Path

import torch

from model import artifact
from model.data import MNIST_FILES
from model.vae import IMAGE_SHAPE, VAE

SPOT_CHECK = {"n_images": 300, "k": 200, "seed": 0}  # a quick figure tests can reproduce
REQUIRED_METHODS = ("encode", "decode", "decode_logits", "reconstruct", "sample")
PUBLISHED = {  # test NLL (nats) on binarized MNIST, Burda et al. 2015, Table 1
    "VAE, 1 stochastic layer (Burda et al. 2015)": 86.76,
    "IWAE k=50, 1 stochastic layer (Burda et al. 2015)": 84.78,
    "VAE, 2 stochastic layers (Burda et al. 2015)": 85.33,
    "IWAE k=50, 2 stochastic layers (Burda et al. 2015)": 82.90,
}


def build_card(model_config: dict, run: dict, metrics: dict, version: str) -> dict:
    return {
        "name": "vae-mnist",
        "version": version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "latent_dim": model_config["latent_dim"],
        "image_shape": list(IMAGE_SHAPE),
        "architecture": model_config,
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


def card_markdown(card: dict) -> str:
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
| training time | {t.get("wall_time", "n/a")} on {t.get("hardware", "n/a")} |
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

## Published single-model figures (test NLL, lower is better)

| model | NLL |
|---|---|
{rows}
"""


def spot_check(model, data_dir: str | None = None) -> dict:
    """IWAE NLL on the first test images with few samples: seconds to recompute, so the
    tests can check that the shipped file still scores what its card says."""
    from model.evaluate import evaluate, load_test_set

    torch.manual_seed(SPOT_CHECK["seed"])
    x = load_test_set(data_dir, SPOT_CHECK["n_images"])
    result = evaluate(model.eval(), x, SPOT_CHECK["k"], progress=False)
    return {**SPOT_CHECK, "nll": result["test_nll_iwae"], "elbo": result["test_elbo"]}


def decode_latency_ms(model, batch: int = 16, repeats: int = 300) -> float:
    """Median wall time of one decode of `batch` latents on one CPU thread, in ms."""
    import time

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


def main(argv: list[str] | None = None) -> None:
    from model.train import load_checkpoint

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoint", help="training checkpoint (e.g. runs/vae/best.pt)")
    p.add_argument("--eval", default=None, help="JSON written by vae-eval --out")
    p.add_argument("--run-info", default=None, help="extra JSON merged into the card's training")
    p.add_argument("--out", default="model/vae_mnist.pt", help="default: %(default)s")
    p.add_argument("--version", default="1.0.0", help="default: %(default)s")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    args = p.parse_args(argv)
    model, state = load_checkpoint(args.checkpoint)
    run_dir = Path(args.checkpoint).parent
    run = run_summary(run_dir)
    run.setdefault("config", state["config"])
    run["best_epoch"] = state["epoch"] + 1
    run["best_val_elbo"] = state["best_val_elbo"]
    if args.run_info:
        run.update(json.loads(Path(args.run_info).read_text()))
    metrics = json.loads(Path(args.eval).read_text()) if args.eval else {}
    metrics["spot_check"] = spot_check(model, args.data_dir)
    metrics["decode_ms_batch16_1thread"] = decode_latency_ms(model)
    card = build_card(state["config"]["model"], run, metrics, args.version)
    out = export(model, card, args.out)
    out.with_name("model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    out.with_name("MODEL_CARD.md").write_text(card_markdown(card))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and its card")


if __name__ == "__main__":
    main()
