"""Train the VAE on MNIST with dynamic binarization, or on dSprites (--dataset dsprites); keep
the best checkpoint by the validation bound being trained (the ELBO for --iw-samples 1, the
IWAE-k bound for k > 1).

    vae-train --epochs 100 --out runs/mlp            # or: python -m model.train ...
    vae-train --resume runs/mlp/last.pt              # carry on where a run stopped
    vae-train --init-from runs/mlp/best.pt --iw-samples 20 --lr 1e-4 --epochs 8
                                                     # fine-tune: same weights, new schedule,
                                                     # no KL warm-up (the model is trained)
    vae-train --dataset dsprites --epochs 16 --epoch-images 100000 --out runs/dsprites
                                                     # a beta-VAE on dSprites (model/dsprites.py),
                                                     # conv 64x64 of Burgess et al. 2018, beta 4
    vae-train --images DIR --image-size 32 --arch conv --out runs/mine
                                                     # your own PNG/JPEG folder (model/images.py;
                                                     # docs/own-model.md): discretised logistic

Writes into --out: last.pt and best.pt (weights, optimizer, config, epoch), metrics.jsonl
(one line per epoch) and, with matplotlib installed, the plots of model/plots.py.
Ctrl-C saves last.pt before leaving, so a run can always be resumed.
"""

import argparse
import dataclasses
import json
import logging
import math
import platform
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model import dsprites
from model import images as folders
from model.artifact import resolve_device
from model.data import binarize, fixed_binarization, load_mnist, split_train_val, to_unit
from model.vae import (
    VAE,
    VAEConfig,
    conv_grid,
    elbo_terms,
    iwae_bound,
    iwae_log_weights,
    training_loss,
)

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    model: VAEConfig = field(default_factory=VAEConfig)
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    min_lr: float = 1e-5  # cosine schedule from lr down to min_lr over the run
    iw_samples: int = 1  # k: 1 trains on the ELBO, k > 1 on the IWAE bound
    kl_warmup_epochs: int = 10  # KL weight grows linearly from 0 to 1 (0: no warm-up)
    # (the command line's default is 0 with --init-from: a trained model needs no warm-up)
    val_size: int = 5000
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 1  # torch intra-op threads on CPU
    data_dir: str | None = None
    init_from: str | None = None  # start from these weights (fresh optimizer and schedule)
    dataset: str = "mnist"  # mnist | dsprites (rendered from its factors, model/dsprites.py)
    beta: float = 1.0  # KL weight after the warm-up: 1 is the VAE, > 1 a beta-VAE
    epoch_images: int = 0  # images per epoch (0: the whole training set; dSprites: a share)
    images: str | None = None  # dataset "images": the folder (model/images.py)
    image_size: int = 0  # images cropped and resized to S x S (0: as they are, one size)
    classes: list[str] = field(default_factory=list)  # the folder's class names (none: [])


def kl_weight(cfg: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    if cfg.kl_warmup_epochs <= 0:
        return cfg.beta
    return cfg.beta * min(1.0, (epoch + step / steps_per_epoch) / cfg.kl_warmup_epochs)


def lr_at(cfg: TrainConfig, progress: float) -> float:
    """Cosine decay from lr to min_lr as progress goes from 0 to 1."""
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


@torch.no_grad()
def evaluate_elbo(model: VAE, x: torch.Tensor, batch_size: int = 1000) -> dict[str, float]:
    """Mean ELBO, reconstruction term and KL (nats) of a fixed-binarized set."""
    model.eval()
    totals = torch.zeros(2)
    for batch in x.split(batch_size):
        recon, kl = elbo_terms(model, batch)
        totals += torch.stack([recon.sum(), kl.sum()]).cpu()
    recon, kl = (totals / len(x)).tolist()
    return {"elbo": recon - kl, "recon": recon, "kl": kl}


def epoch_batches(x, cfg: TrainConfig, generator: torch.Generator) -> tuple[Iterable, int, int]:
    """(binary batches, number of batches, number of images) of one epoch.

    MNIST: `x` holds the intensities (on the device), shuffled and binarized afresh.
    dSprites: `x` holds the training indices; cfg.epoch_images of them (all when 0), drawn
    in shuffled passes and rendered batch by batch (model/dsprites.py).
    """
    if cfg.dataset == "dsprites":
        n = cfg.epoch_images or len(x)
        rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
        device = resolve_device(cfg.device)
        batches = (b.to(device) for b in dsprites.batches(x, cfg.batch_size, n, rng))
        return batches, math.ceil(n / cfg.batch_size), n
    split = x[torch.randperm(len(x), generator=generator)].split(cfg.batch_size)
    if cfg.dataset == "images":  # uint8 on the device; the logistic models the 8-bit values
        unit = (batch.float().div_(255.0) for batch in split)
        bernoulli = cfg.model.likelihood == "bernoulli"
        return (binarize(b) if bernoulli else b for b in unit), len(split), len(x)
    return (binarize(batch) for batch in split), len(split), len(x)


def train_epoch(
    model: VAE,
    optimizer: torch.optim.Optimizer,
    x,
    cfg: TrainConfig,
    epoch: int,
    generator: torch.Generator,
) -> dict[str, float]:
    """One pass over `x`: see epoch_batches."""
    model.train()
    batches, n_batches, n_images = epoch_batches(x, cfg, generator)
    sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
    interval = 10 if cfg.dataset == "dsprites" else 0.1  # dSprites: a log line every 10 s
    desc = f"epoch {epoch + 1}/{cfg.epochs}"
    bar = tqdm(batches, total=n_batches, desc=desc, leave=False, dynamic_ncols=True,
               mininterval=interval)  # fmt: skip
    for step, batch in enumerate(bar):
        progress = (epoch + step / n_batches) / cfg.epochs
        for group in optimizer.param_groups:
            group["lr"] = lr_at(cfg, progress)
        beta = kl_weight(cfg, epoch, step, n_batches)
        parts = training_loss(model, batch, k=cfg.iw_samples, beta=beta)
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        optimizer.step()
        for name in sums:
            sums[name] += parts[name].item() * len(batch)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{parts['loss'].item():.2f}", kl=f"{parts['kl'].item():.2f}")
    return {name: value / n_images for name, value in sums.items()}


def selection_key(cfg: TrainConfig) -> str:
    """The validation figure that picks best.pt: the bound being trained."""
    return "val_elbo" if cfg.iw_samples == 1 else f"val_iwae_k{cfg.iw_samples}"


def validation(model: VAE, x_val: torch.Tensor, cfg: TrainConfig) -> dict[str, float]:
    """Validation ELBO (and parts) and, for k > 1, the IWAE-k bound that is trained."""
    val = evaluate_elbo(model, x_val)
    if cfg.iw_samples > 1:
        val[f"iwae_k{cfg.iw_samples}"] = evaluate_iwae(model, x_val, cfg.iw_samples)
    return val


def evaluate_iwae(model: VAE, x: torch.Tensor, k: int, batch_size: int = 500) -> float:
    """Mean IWAE-k bound over x (nats per image)."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for batch in x.split(batch_size):
            log_w = iwae_log_weights(model, batch, k, model.likelihood)
            total += iwae_bound(log_w).sum().item()
    model.train()
    return total / len(x)


def save_checkpoint(
    path: Path, model: VAE, optimizer, cfg: TrainConfig, epoch: int, best: float, val: dict
):
    """`val`: this checkpoint's own validation figures (the card shows them, not the run's)."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": dataclasses.asdict(cfg),
        "epoch": epoch,
        "best_val": best,  # best so far of selection_key (resuming carries on comparing it)
        "selected_by": selection_key(cfg),
        "val": val,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # never leaves a half-written checkpoint behind


def config_from_dict(d: dict) -> TrainConfig:
    d = dict(d)
    d["model"] = VAEConfig(**d["model"])
    return TrainConfig(**d)


def load_checkpoint(path: str | Path) -> tuple[VAE, dict]:
    """Rebuild the model from a checkpoint alone (its config travels with the weights)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = VAE(VAEConfig(**state["config"]["model"]))
    model.load_state_dict(state["model"])
    return model, state


def training_data(
    cfg: TrainConfig, device: torch.device, folder: folders.ImageFolder | None = None
) -> tuple:
    """(what train_epoch draws from, fixed binary validation images on the device).

    dSprites: the training combinations of dsprites.split() (the test ones never seen) as
    indices, less cfg.val_size of them kept for validation.
    Images: the folder's uint8 images less a held-out tenth (folders.split_indices); the
    validation images as they are (discretised logistic) or fixed-binarized (Bernoulli).
    """
    if cfg.dataset == "images":
        folder = folder or folders.load_folder(cfg.images, cfg.image_size)
        train_index, val_index = folders.split_indices(len(folder), cfg.val_size, cfg.seed)
        x_val = folder.unit(val_index)
        if cfg.model.likelihood == "bernoulli":
            x_val = fixed_binarization(x_val, cfg.seed)
        return folder.images[torch.as_tensor(train_index)].to(device), x_val.to(device)
    if cfg.dataset == "dsprites":
        train_index, _ = dsprites.split()
        order = np.random.default_rng(cfg.seed).permutation(train_index)
        val_index, train_index = np.sort(order[: cfg.val_size]), np.sort(order[cfg.val_size :])
        return train_index, dsprites.images(val_index).to(device)
    images, labels = load_mnist("train", cfg.data_dir)
    (train_images, _), (val_images, _) = split_train_val(images, labels, cfg.val_size, cfg.seed)
    x_train = to_unit(train_images).to(device)
    return x_train, fixed_binarization(to_unit(val_images), cfg.seed).to(device)


def train(
    cfg: TrainConfig,
    out: Path,
    resume: Path | None = None,
    folder: folders.ImageFolder | None = None,
) -> Path:
    """Run the training loop; returns the path of the best checkpoint. `folder`: the images
    of cfg.images when already read (main reads them first, to check them)."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    out.mkdir(parents=True, exist_ok=True)

    x_train, x_val = training_data(cfg, device, folder)

    if cfg.init_from and resume is None:  # fine-tuning: the checkpoint's architecture and weights
        model, init = load_checkpoint(cfg.init_from)
        cfg = dataclasses.replace(cfg, model=VAEConfig(**init["config"]["model"]))
        log.info("starting from the weights of %s", cfg.init_from)
    else:
        model = VAE(cfg.model)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start, best = 0, -math.inf
    key = selection_key(cfg)
    if resume is not None:
        state = torch.load(resume, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, best = state["epoch"] + 1, state.get("best_val", state.get("best_val_elbo"))
        log.info("resumed from %s at epoch %d (best %s %.2f)", resume, start, key, best)
    generator = torch.Generator().manual_seed(cfg.seed + start)
    (out / "config.json").write_text(json.dumps(run_info(cfg, device), indent=2))

    epoch = start - 1
    try:
        for epoch in range(start, cfg.epochs):
            t0 = time.perf_counter()
            train_stats = train_epoch(model, optimizer, x_train, cfg, epoch, generator)
            val = validation(model, x_val, cfg)
            seconds = time.perf_counter() - t0
            record = {
                "epoch": epoch + 1,
                **{f"train_{k}": v for k, v in train_stats.items()},
                **{f"val_{k}": v for k, v in val.items()},
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": seconds,
                "images": cfg.epoch_images or len(x_train),
                "images_per_second": (cfg.epoch_images or len(x_train)) / seconds,
            }
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            figures = {f"val_{name}": value for name, value in val.items()}
            if figures[key] > best:
                best = figures[key]
                save_checkpoint(out / "best.pt", model, optimizer, cfg, epoch, best, figures)
            save_checkpoint(out / "last.pt", model, optimizer, cfg, epoch, best, figures)
            bits = ""  # 8-bit images: the ELBO in bits per dimension, the usual unit
            if cfg.dataset == "images":
                bits = f" = {-val['elbo'] / (x_val[0].numel() * math.log(2)):.3f} bits/dim"
            tqdm.write(
                f"epoch {epoch + 1}: train loss {train_stats['loss']:.2f}  "
                f"val ELBO {val['elbo']:.2f}{bits} (KL {val['kl']:.2f})  {seconds:.0f}s"
            )
    except KeyboardInterrupt:
        last = max(epoch - 1, start - 1)
        save_checkpoint(out / "last.pt", model, optimizer, cfg, last, best, {})
        log.warning("interrupted: saved %s; resume with --resume", out / "last.pt")
        raise
    return out / "best.pt"


def run_info(cfg: TrainConfig, device: torch.device) -> dict:
    return {
        "config": dataclasses.asdict(cfg),
        "command": " ".join(["vae-train", *sys.argv[1:]]),
        "device": str(device),
        "hardware": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, Path, Path | None, bool]:
    d, m = TrainConfig(), VAEConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/vae", help="run directory (default: runs/vae)")
    p.add_argument("--resume", default=None, help="checkpoint to resume from (e.g. runs/x/last.pt)")
    p.add_argument(
        "--init-from", default=None, help="fine-tune: start from this checkpoint's weights"
    )
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    p.add_argument(
        "--images",
        default=None,
        help="train on a folder of PNG/JPEG images instead (model/images.py): DIR/<class>/* "
        "for classes, DIR/* without; sets the defaults to conv, discretised logistic",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=0,
        help="crop the centre square and resize to S x S (default: as they are, one size)",
    )
    p.add_argument(
        "--likelihood",
        default=None,
        choices=["bernoulli", "discretised_logistic"],
        help="p(x|z) per value (default: bernoulli; with --images discretised_logistic, "
        "Salimans et al. 2017)",
    )
    p.add_argument(
        "--dataset",
        default=d.dataset,
        choices=["mnist", "dsprites"],
        help="default: %(default)s; dsprites sets the defaults of the architecture to "
        "Burgess et al. 2018's (conv, 64x64, channels 32 32 64 64, dense 256, ReLU, D=10), "
        "--beta 4, --batch-size 64, --lr 5e-4, --kl-warmup-epochs 1",
    )
    p.add_argument("--arch", default=None, choices=["mlp", "conv"], help=f"default: {m.arch}")
    p.add_argument("--latent-dim", type=int, default=None, help=f"default: {m.latent_dim}")
    p.add_argument("--hidden", type=int, nargs="+", default=m.hidden, help="default: %(default)s")
    p.add_argument("--channels", type=int, nargs="+", default=None, help=f"default: {m.channels}")
    p.add_argument("--conv-hidden", type=int, default=None, help=f"default: {m.conv_hidden}")
    p.add_argument("--beta", type=float, default=None, help=f"KL weight (default: {d.beta})")
    p.add_argument(
        "--epoch-images", type=int, default=d.epoch_images, help="images per epoch (0: all)"
    )
    p.add_argument("--epochs", type=int, default=d.epochs, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=None, help=f"default: {d.batch_size}")
    p.add_argument("--lr", type=float, default=None, help=f"default: {d.lr}")
    p.add_argument("--min-lr", type=float, default=d.min_lr, help="default: %(default)s")
    p.add_argument("--iw-samples", type=int, default=d.iw_samples, help="default: %(default)s")
    p.add_argument(
        "--kl-warmup-epochs",
        type=int,
        default=None,
        help=f"default: {d.kl_warmup_epochs}, or 0 with --init-from (a trained model)",
    )
    p.add_argument("--val-size", type=int, default=d.val_size, help="default: %(default)s")
    p.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    p.add_argument("--device", default=d.device, help="auto|cpu|cuda|cuda:N (default: auto)")
    p.add_argument("--threads", type=int, default=d.threads, help="default: %(default)s")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots at the end")
    a = p.parse_args(argv)
    try:
        resolve_device(a.device)
    except ValueError as e:
        p.error(f"--device {e}")
    # Defaults per dataset; what the command line names wins.
    # dSprites: Burgess et al. 2018 (arch, Adam 5e-4, batch 64), beta 4 (Higgins et al. 2017).
    arch = dict(arch="conv", latent_dim=10, channels=[32, 32, 64, 64], conv_hidden=256)
    arch |= dict(image_shape=list(dsprites.IMAGE_SHAPE), activation="relu")
    dsprites_defaults = dict(arch, beta=4.0, batch_size=64, lr=5e-4, kl_warmup_epochs=1)
    defaults = dataclasses.asdict(m) | dataclasses.asdict(d)
    if a.dataset == "dsprites":
        defaults |= dsprites_defaults
    if a.images is not None:  # 8-bit images of any shape: conv, the discretised logistic
        if a.dataset != "mnist":
            p.error("--images and --dataset are alternatives: give one")
        a.dataset = "images"
        defaults |= dict(arch="conv", likelihood="discretised_logistic")
    if a.image_size < 0:
        p.error("--image-size must be positive")
    for name in ("arch", "latent_dim", "channels", "conv_hidden", "beta", "batch_size", "lr"):
        if getattr(a, name) is None:
            setattr(a, name, defaults[name])
    if a.kl_warmup_epochs is None:
        a.kl_warmup_epochs = 0 if a.init_from else defaults["kl_warmup_epochs"]
    model_cfg = VAEConfig(
        a.arch, a.latent_dim, a.hidden, a.channels, a.conv_hidden,
        defaults["image_shape"], defaults["activation"], a.likelihood or defaults["likelihood"],
    )  # fmt: skip
    cfg = TrainConfig(
        model_cfg, a.epochs, a.batch_size, a.lr, a.min_lr, a.iw_samples,
        a.kl_warmup_epochs, a.val_size, a.seed, a.device, a.threads, a.data_dir, a.init_from,
        a.dataset, a.beta, a.epoch_images, a.images, a.image_size,
    )  # fmt: skip
    if a.resume:  # the checkpoint's own config wins, except for the length of the run and
        # where it runs (device, threads, data folder), which belong to this machine
        state = torch.load(a.resume, map_location="cpu", weights_only=True)
        cfg = dataclasses.replace(
            config_from_dict(state["config"]),
            epochs=a.epochs,
            device=a.device,
            threads=a.threads,
            data_dir=a.data_dir,
        )
    return cfg, Path(a.out), Path(a.resume) if a.resume else None, not a.no_plots


def with_folder(cfg: TrainConfig) -> tuple[TrainConfig, folders.ImageFolder]:
    """Reads cfg.images; the config gains the images' shape and class names. Raises
    folders.FolderError (one line) for a folder or size the model cannot train on."""
    cfg = dataclasses.replace(cfg, images=str(Path(cfg.images).resolve()))  # export reads it
    folder = folders.load_folder(cfg.images, cfg.image_size)
    shape, previous = folder.image_shape, cfg.model.image_shape
    if cfg.classes and (folder.classes != cfg.classes or shape != previous):  # --resume
        raise folders.FolderError(
            f"{cfg.images} now holds {shape} images of classes {folder.classes}; the run was "
            f"trained on {previous}, {cfg.classes}"
        )
    cfg = dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, image_shape=shape), classes=folder.classes
    )
    if cfg.model.arch == "conv":
        try:
            conv_grid(cfg.model)
        except ValueError:
            factor = 2 ** len(cfg.model.channels)
            raise folders.FolderError(
                f"{shape[1]}x{shape[2]} images do not fit the conv network's {factor}x "
                f"downsampling (one halving per --channels entry): give --image-size a "
                f"multiple of {factor}"
            ) from None
    return cfg, folder


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg, out, resume, plots = parse_args(argv)
    folder = None
    if cfg.dataset == "images":
        try:
            cfg, folder = with_folder(cfg)
        except folders.FolderError as e:
            sys.exit(f"vae-train: {e}")  # one line on stderr, exit status 1
        log.info(
            "%d images %s, classes %s, %d skipped",
            len(folder), "x".join(map(str, folder.image_shape)), folder.classes or "none",
            len(folder.skipped),
        )  # fmt: skip
    try:
        best = train(cfg, out, resume, folder)
    except KeyboardInterrupt:
        sys.exit(130)
    log.info("best checkpoint: %s", best)
    if plots:
        from model.plots import plot_run

        if cfg.dataset == "mnist":  # dSprites' figures: python -m model.evaluate_dsprites
            plot_run(out, best, cfg.data_dir)


if __name__ == "__main__":
    main()
