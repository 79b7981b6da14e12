"""The card and export-time data of a model trained on your own images (`vae-train --images`).

    vae-export runs/mine/best.pt --out mine.pt      # reads the run's folder again

The card keeps the layout of the MNIST and dSprites cards (model/export.py build_card) with
what the service reads to serve it: `image_shape` [C, H, W], `classes` (the folder's class
names; [] without classes), `preprocessor` "resize" (model/images.py square_resize) and
`likelihood`. The heads are fitted on the run's own images, split as training split them
(model/images.py split_indices): the classifier and one latent mixture per class on the
training images, the score table and the classifier's accuracy on the held-out ones. A
folder without classes gets the score head alone (the service answers 501 for classify and
conditional sampling).
"""

import datetime as dt
import math
import re
from pathlib import Path

import torch

from model import images
from model.fit_heads import Digits, HeadsConfig, fit_heads, fit_score_head
from model.vae import VAE

KIND = "image folder"
PREPROCESSOR = "resize"
SCORE_IMAGES = 1_000  # held-out images behind the score table, at most
SPOT_CHECK_IMAGES = 100  # held-out images of the spot check, at most (export.SPOT_CHECK's K)
POINTS_PER_COMPONENT = 10  # a class's mixture has at most (its training images / this) parts
# The classifier trains for at least this many Adam steps (batch 256): MNIST's 40 epochs are
# 9,400 steps, while 40 epochs of 270 images are 80, too few to learn anything (measured:
# 20 % held-out accuracy on 3 dSprites shapes, one class predicted for all).
CLASSIFIER_STEPS = 1_000
LIKELIHOOD_TEXT = {
    "bernoulli": "Bernoulli per value (8-bit values as soft targets)",
    "discretised_logistic": "discretised logistic per value, 256 bins (Salimans et al. 2017, "
    "PixelCNN++; one component, channels independent given z)",
}


def is_own(card: dict) -> bool:
    """Whether the card is of a model trained on a folder of images."""
    return card.get("dataset", {}).get("kind") == KIND


def model_name(folder: str) -> str:
    """'vae-<folder name>', in letters, digits, '-' and '_' (it names the card's files)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", Path(folder).resolve().name.lower()).strip("-")
    return f"vae-{slug or 'images'}"


def read_run_folder(config: dict) -> tuple[images.ImageFolder, list, list]:
    """The run's folder read as training read it, and its (training, held-out) indices.
    Raises FolderError when the folder no longer matches the run."""
    folder = images.load_folder(config["images"], config.get("image_size", 0), progress=False)
    if folder.classes != config.get("classes", []):
        raise images.FolderError(
            f"{config['images']} now has classes {folder.classes}; the run was trained on "
            f"{config.get('classes', [])}"
        )
    if folder.image_shape != config["model"]["image_shape"]:
        raise images.FolderError(
            f"{config['images']} now gives {folder.image_shape} images; the run was trained "
            f"on {config['model']['image_shape']}"
        )
    train, val = images.split_indices(len(folder), config["val_size"], config["seed"])
    return folder, train, val


def build_card(config: dict, run: dict, metrics: dict, version: str) -> dict:
    """The card of a run on config["images"] (config: the checkpoint's TrainConfig)."""
    from model.export import architecture

    model_config = config["model"]
    folder, train, val = read_run_folder(config)
    likelihood = model_config.get("likelihood", "bernoulli")
    size = config.get("image_size", 0)
    return {
        "name": model_name(config["images"]),
        "version": version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "latent_dim": model_config["latent_dim"],
        "image_shape": list(model_config["image_shape"]),
        "classes": list(folder.classes),
        "preprocessor": PREPROCESSOR,
        "architecture": architecture(model_config),
        "inputs": "8-bit images in [0, 1]; uploads are centre-cropped to a square and "
        "area-resampled to H x W, as the training images were",
        "likelihood": likelihood,
        "likelihood_detail": LIKELIHOOD_TEXT[likelihood],
        "prior": "N(0, I)",
        "posterior": "diagonal Gaussian",
        "training": run,
        "dataset": {
            "kind": KIND,
            "path": str(config["images"]),
            "n_images": len(folder),
            "n_train": len(train),
            "n_held_out": len(val),
            "skipped_files": len(folder.skipped),
            "class_counts": folder.class_counts(),
            "image_size": f"{size}x{size}, centre crop and area resampling" if size else "as is",
            "channels": "grey" if folder.image_shape[0] == 1 else "RGB",
        },
        "metrics": metrics,
        "torch": torch.__version__,
    }


def spot_check_images(card: dict) -> torch.Tensor:
    """The first held-out images (at most SPOT_CHECK_IMAGES), in [0, 1]."""
    folder, _, val = read_run_folder(card["training"]["config"])
    return folder.unit(val[:SPOT_CHECK_IMAGES])


def bits_per_dim(nll_nats: float, card: dict) -> float:
    """A negative log-likelihood per image in nats as bits per dimension (C x H x W)."""
    return nll_nats / (math.prod(card["image_shape"]) * math.log(2))


def fit(vae: VAE, card: dict, cfg: HeadsConfig) -> tuple[VAE, dict]:
    """The heads fitted on the run's images: classifier, mixtures and score with classes,
    the score alone without. Returns the model and its figures (with `methods`)."""
    folder, train, val = read_run_folder(card["training"]["config"])
    held_out = folder.unit(val)
    cfg.score_images = min(len(val), SCORE_IMAGES)
    if not folder.classes:
        model, figures = fit_score_head(
            vae, card["architecture"], folder.unit(train), held_out, cfg
        )
        return model, {**figures, "methods": ["score", "percentile"]}
    train_set = Digits(folder.unit(train), folder.labels[torch.as_tensor(train)])
    counts = torch.bincount(train_set.labels, minlength=len(folder.classes))
    if counts.min() == 0:
        missing = [c for c, n in zip(folder.classes, counts.tolist(), strict=True) if not n]
        raise images.FolderError(
            f"class(es) {', '.join(missing)} have no training images (all held out): add images"
        )
    cfg.n_components = max(1, min(cfg.n_components, int(counts.min()) // POINTS_PER_COMPONENT))
    steps_per_epoch = math.ceil(len(train) / 256)
    epochs = math.ceil(CLASSIFIER_STEPS / steps_per_epoch)
    cfg.classifier_epochs = max(cfg.classifier_epochs, epochs)
    test_set = Digits(held_out, folder.labels[torch.as_tensor(val)])
    model, figures = fit_heads(
        vae, card["architecture"], train_set, test_set, cfg, len(folder.classes)
    )
    return model, {**figures, "methods": ["score", "percentile", "classify", "digit_latents"]}


def card_markdown(card: dict) -> str:
    from model.export import checkpoint_text, ood_text, rejection_text

    m, arch, t, data = card["metrics"], card["architecture"], card["training"], card["dataset"]
    cfg = t.get("config", {})
    spot = m.get("spot_check", {})
    cap = card.get("capabilities", {})
    classes = ", ".join(card["classes"]) or "none"
    lines = [
        f"# Model card: {card['name']} {card['version']}\n",
        f"A VAE trained on the images of `{data['path']}` (`vae-train --images`; "
        "vae-serve's docs/own-model.md): a diagonal-Gaussian encoder q(z|x), "
        f"decoder p(x|z) {card['likelihood_detail']}, prior N(0, I), latent dimension "
        f"{card['latent_dim']}, images {card['image_shape']} ({data['channels']}), "
        f"classes: {classes}; preprocessor `{card['preprocessor']}`.\n",
        "| | |",
        "|---|---|",
        f"| architecture | {arch['arch']}, channels {arch.get('channels')}, dense "
        f"{arch.get('conv_hidden')}, {arch.get('activation', 'gelu')} |",
        f"| images | {data['n_images']} ({data['n_train']} training, {data['n_held_out']} "
        f"held out; {data['skipped_files']} unreadable files skipped), {data['image_size']} |",
        f"| class counts | {data['class_counts'] or 'no classes'} |",
        f"| training | {cfg.get('epochs')} epochs, batch {cfg.get('batch_size')}, Adam "
        f"{cfg.get('lr')}; {t.get('wall_time', 'n/a')} on {t.get('hardware', 'n/a')} |",
        f"| checkpoint | {checkpoint_text(t)} |",
        f"| created | {card['created']} |",
        f"\nTrain: `{t.get('command', '')}`\n",
    ]
    if spot:
        lines += [
            f"## Held-out images ({spot['n_images']}, K={spot['k']})\n",
            "| figure | value |",
            "|---|---|",
            f"| NLL, IWAE bound | {spot['nll']:.2f} nats = **{spot['bits_per_dim']:.3f} "
            "bits/dim** |",
            f"| ELBO | {spot['elbo']:.2f} nats |",
            "",
        ]
    if cap:
        table = cap["test_log_likelihood"]
        lines += [
            "## Capabilities fitted at export time\n",
            f"Methods: {', '.join(f'`{x}`' for x in cap['methods'])}; fitted by "
            f"`{cap['command']}` ({cap.get('minutes', 'n/a')} min).\n",
            f"- **score**: IWAE log-likelihood at K={table['k']} of "
            f"{cap['config']['score_images']} held-out images: median {table['median']:.1f} "
            f"nats, mean {table['bits_per_dim_mean']:.3f} bits/dim.",
            ood_text(cap, "held-out images"),
        ]
        if "classifier_test_accuracy" in cap:
            lines += [
                f"- **classify**: an MLP head on mu (encoder frozen), held-out accuracy "
                f"**{100 * cap['classifier_test_accuracy']:.1f} %**, confusion "
                f"{cap['confusion_matrix']} (rows: true {card['classes']}).",
                f"- **conditional sampling**: a Gaussian mixture over mu per class "
                f"({cap['config']['n_components']} full-covariance components, EM)"
                f"{rejection_text(cap)}.",
            ]
    return "\n".join(lines) + "\n"
