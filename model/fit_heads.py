"""Fit the heads of VAEWithHeads (model/heads.py) on a trained VAE, encoder frozen.

Called by `vae-export --heads` (the default). From the 60k MNIST training digits (grey
levels, as the service sees them) it fits
- a classifier on mu (the "M1" use of a VAE, Kingma et al. 2014): a small MLP trained on
  z ~ q(z|x) drawn afresh each epoch, so it also sees the spread of q around mu;
- one Gaussian mixture over mu per digit (EM, full covariances), for conditional sampling;
and from the 10k test digits the sorted table of IWAE log-likelihoods behind `percentile`.
The out-of-distribution score (model/ood.py) is fitted on training images the VAE learnt
from (the context background and the kernel density) and calibrated on held-out ones it
never saw (its table, and the `typical` threshold at a low percentile of it): for MNIST
the validation split of training (model.data.split_train_val), so that test digits stay
for evaluation. It reports the test accuracy and confusion matrix of the classifier.
"""

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor
from torch.distributions import MultivariateNormal
from tqdm import tqdm

from model import ood
from model.data import load_mnist, split_train_val, to_unit
from model.heads import N_DIGITS, OOD_STATISTICS, VAEWithHeads, VAEWithScore
from model.vae import VAE, VAEConfig, iwae_bound, iwae_log_weights, likelihood_of


@dataclass
class HeadsConfig:
    n_components: int = 8  # Gaussians per digit in latent space
    em_iterations: int = 100
    head_hidden: int = 256  # classifier widths: D -> hidden -> hidden -> 10
    classifier_epochs: int = 40
    classifier_lr: float = 1e-3
    score_k: int = 100  # importance samples behind the test-set score table
    typical_percentile: float = 1.0  # below this percentile of test digits: not typical
    seed: int = 0
    score_images: int = 0  # test images behind the score table (0: all of them)
    # The classifier trains on z = mu + noise * sigma * eps; 0 trains on mu alone (dSprites'
    # beta-VAE: its large sigma drowned the shape in mu, 69 % against 78 % at epoch 7)
    classifier_noise: float = 1.0
    ood_fit_images: int = 2000  # training images behind the OOD kernel density
    ood_table_images: int = 5000  # held-out images behind its table and threshold (at most)
    class_candidates: int = 16  # conditional sampling: draws per sample, with rejection...
    class_acceptance: float = 0.9  # ...of those the classifier gives less than this


@dataclass
class Digits:
    """Grey-level images (N, C, H, W) in [0, 1] and their labels (N,): MNIST's digits by
    `load`, or any labelled images (dSprites' shapes, model/dsprites_card.py)."""

    images: Tensor
    labels: Tensor

    @classmethod
    def load(cls, split: str, data_dir: str | None = None) -> "Digits":
        images, labels = load_mnist(split, data_dir)
        return cls(to_unit(images), torch.from_numpy(labels).long())


@dataclass
class OODImages:
    """What the OOD score is fitted on (images the VAE trained on) and calibrated on
    (held-out images it never saw), (N, C, H, W) in [0, 1] each."""

    fit: Tensor
    held_out: Tensor

    @classmethod
    def mnist(cls, data_dir: str | None = None) -> "OODImages":
        """The training and validation splits vae-train uses (seed 0, 5,000 held out)."""
        images, labels = load_mnist("train", data_dir)
        (train, _), (val, _) = split_train_val(images, labels)
        return cls(to_unit(train), to_unit(val))


@torch.no_grad()
def encode_all(model, images: Tensor, batch: int = 1000, desc: str = "encode") -> tuple:
    """mu and sigma of q(z|x) for every image: (N, D) each."""
    parts = [model.encode(x) for x in tqdm(images.split(batch), desc=desc, dynamic_ncols=True)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def train_classifier(
    head: torch.nn.Module, mu: Tensor, sigma: Tensor, labels: Tensor, cfg: HeadsConfig
) -> None:
    """Trains `head` in place with Adam and a cosine schedule, batch 256."""
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.Adam(head.parameters(), lr=cfg.classifier_lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.classifier_epochs)
    head.train()
    for _ in tqdm(range(cfg.classifier_epochs), desc="classifier", dynamic_ncols=True):
        z = mu + cfg.classifier_noise * sigma * torch.randn(mu.shape, generator=generator)
        for idx in torch.randperm(len(z), generator=generator).split(256):
            loss = torch.nn.functional.cross_entropy(head(z[idx]), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    head.eval()


def confusion_matrix(predicted: Tensor, labels: Tensor, n_classes: int = N_DIGITS) -> Tensor:
    """(K, K) counts: row = true class, column = predicted class."""
    counts = torch.zeros(n_classes * n_classes, dtype=torch.long)
    counts.index_add_(0, labels * n_classes + predicted, torch.ones_like(labels))
    return counts.view(n_classes, n_classes)


@torch.no_grad()
def fit_mixture(z: Tensor, n_components: int, iterations: int, seed: int = 0) -> tuple:
    """EM for a full-covariance Gaussian mixture over z (N, D), in float64; covariances get
    1e-4 on the diagonal (keeps them invertible). -> weights (C,), means (C, D), L (C, D, D)."""
    z = z.double()
    n, d = z.shape
    generator = torch.Generator().manual_seed(seed)
    means = z[torch.randperm(n, generator=generator)[:n_components]].clone()
    cov = torch.cov(z.T).expand(n_components, d, d).clone()
    weights = torch.full((n_components,), 1.0 / n_components, dtype=torch.float64)
    ridge = 1e-4 * torch.eye(d, dtype=torch.float64)
    for _ in range(iterations):
        tril = torch.linalg.cholesky(cov + ridge)
        log_p = MultivariateNormal(means, scale_tril=tril).log_prob(z[:, None]) + weights.log()
        resp = log_p.softmax(-1)  # (N, C)
        total = resp.sum(0) + 1e-12
        weights = total / n
        means = resp.T @ z / total[:, None]
        diff = z[:, None] - means  # (N, C, D)
        cov = torch.einsum("nc,ncd,nce->cde", resp, diff, diff) / total[:, None, None]
    return weights.float(), means.float(), torch.linalg.cholesky(cov + ridge).float()


@torch.no_grad()
def log_likelihoods(model, images: Tensor, k: int, max_rows: int = 20000) -> Tensor:
    """IWAE(k) log-likelihood of each image (grey levels: soft targets), (N,)."""
    per_batch = max(1, max_rows // k)
    batches = tqdm(images.split(per_batch), desc=f"IWAE k={k}", dynamic_ncols=True)
    likelihood = likelihood_of(model)
    return torch.cat([iwae_bound(iwae_log_weights(model, x, k, likelihood)) for x in batches])


def fit_heads(
    vae: VAE,
    model_config: dict,
    train: Digits,
    test: Digits,
    cfg: HeadsConfig,
    n_classes: int = N_DIGITS,
    ood_images: OODImages | None = None,
) -> tuple[VAEWithHeads, dict]:
    """A VAEWithHeads with the weights of `vae` and fitted heads, and its figures. The OOD
    score is fitted on `ood_images` (default: train's images, calibrated on test's)."""
    torch.manual_seed(cfg.seed)
    score_images = test.images[: cfg.score_images] if cfg.score_images else test.images
    ood_images = ood_images or OODImages(train.images, test.images)
    model = VAEWithHeads(
        VAEConfig(**model_config),
        cfg.n_components,
        len(score_images),
        cfg.head_hidden,
        n_classes,
        **ood_sizes(ood_images, cfg),
    )
    missing, unexpected = model.load_state_dict(vae.state_dict(), strict=False)
    if unexpected or any(key.startswith(("encoder", "to_params", "decoder")) for key in missing):
        raise ValueError(f"not the VAE's weights: missing {missing}, unexpected {unexpected}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)  # the VAE stays frozen; only the classifier learns
    for p in model.classifier.parameters():
        p.requires_grad_(True)

    mu, sigma = encode_all(model, train.images, desc="mu of training digits")
    train_classifier(model.classifier, mu, sigma, train.labels, cfg)
    test_mu, _ = encode_all(model, test.images, desc="mu of test digits")
    with torch.no_grad():
        predicted = model.classifier(test_mu).argmax(-1)
    confusion = confusion_matrix(predicted, test.labels, n_classes)
    accuracy = confusion.diag().sum().item() / len(test.labels)

    for digit in tqdm(range(n_classes), desc="per-class mixtures", dynamic_ncols=True):
        weights, means, tril = fit_mixture(
            mu[train.labels == digit], cfg.n_components, cfg.em_iterations, cfg.seed
        )
        model.digit_weights[digit], model.digit_means[digit] = weights, means
        model.digit_scale_tril[digit] = tril
    model.class_candidates = cfg.class_candidates
    model.class_acceptance.fill_(cfg.class_acceptance)

    figures = {
        "config": asdict(cfg),
        "classifier_test_accuracy": accuracy,
        "confusion_matrix": confusion.tolist(),
        **fit_score(model, score_images, cfg),
        **fit_ood(model, ood_images, cfg),
    }
    return model, figures


def ood_sizes(images: OODImages, cfg: HeadsConfig) -> dict[str, int]:
    """The sizes of the OOD buffers (model/heads.py) for these images."""
    return {
        "ood_points": min(len(images.fit), cfg.ood_fit_images),
        "ood_table_size": min(len(images.held_out), cfg.ood_table_images),
    }


@torch.no_grad()
def ood_statistics(model: VAEWithScore, images: Tensor, k: int, max_rows: int = 20000) -> Tensor:
    """model.ood_statistics of every image, with the score at k: (N, 5)."""
    parts = []
    for x in tqdm(images.split(max(1, max_rows // k)), desc=f"OOD statistics k={k}"):
        _, reconstruction, kl, log_likelihood = model.score(x, k)[:4]
        parts.append(model.ood_statistics(x, log_likelihood, reconstruction, kl))
    return torch.cat(parts)


@torch.no_grad()
def fit_ood(model: VAEWithScore, images: OODImages, cfg: HeadsConfig) -> dict:
    """Fits the OOD score of `model` (model/ood.py: the context background on every fit
    image, the kernel density on a random ood_fit_images of them), its table and the
    `typical` threshold (typical_percentile of the held-out scores); returns figures."""
    generator = torch.Generator().manual_seed(cfg.seed)
    sizes = ood_sizes(images, cfg)
    model.ood_context.copy_(ood.fit_context_background(images.fit, model.ood_levels))
    chosen = torch.randperm(len(images.fit), generator=generator)[: sizes["ood_points"]]
    torch.manual_seed(cfg.seed)
    fitted = ood.fit_kde(ood_statistics(model, images.fit[chosen], cfg.score_k))
    for buffer, value in zip(
        (model.ood_mean, model.ood_whitening, model.ood_points, model.ood_bandwidth),
        fitted,
        strict=True,
    ):
        buffer.copy_(value.float())
    held_out = images.held_out[: sizes["ood_table_size"]]
    scores = model.ood_score(ood_statistics(model, held_out, cfg.score_k))
    table = scores.sort().values
    model.ood_table.copy_(table)
    threshold = torch.quantile(table, cfg.typical_percentile / 100)
    model.typical_threshold.copy_(threshold)
    return {
        "ood": {
            "method": "kernel density over (log-likelihood, reconstruction, KL, "
            "context-background log-likelihood, share of grey pixels), DoSE (Morningstar "
            "et al. 2021)",
            "statistics_used": [
                name
                for name, row in zip(OOD_STATISTICS, model.ood_whitening, strict=True)
                if row.abs().sum() > 0
            ],
            "k": cfg.score_k,
            "fit_images": len(images.fit),
            "density_points": sizes["ood_points"],
            "held_out_images": len(held_out),
            "percentiles": {
                str(q): torch.quantile(table, q / 100).item() for q in (1, 5, 25, 50, 75, 95, 99)
            },
        },
        "typical_threshold": threshold.item(),
    }


def fit_score(model: VAEWithScore, score_images: Tensor, cfg: HeadsConfig) -> dict:
    """Fills the score table (sorted IWAE log-likelihoods of `score_images`) of `model`;
    returns its figures."""
    torch.manual_seed(cfg.seed)
    table = log_likelihoods(model, score_images, cfg.score_k).sort().values
    model.score_table.copy_(table)
    model.score_k = cfg.score_k
    return {
        "test_log_likelihood": {
            "k": cfg.score_k,
            "mean": table.mean().item(),
            "median": table.median().item(),
            "percentiles": {
                str(q): torch.quantile(table, q / 100).item() for q in (1, 5, 25, 50, 75, 95, 99)
            },
            "bits_per_dim_mean": -table.mean().item() / (score_images[0].numel() * math.log(2)),
        },
    }


def fit_score_head(
    vae: VAE, model_config: dict, train: Tensor, test: Tensor, cfg: HeadsConfig
) -> tuple[VAEWithScore, dict]:
    """A VAEWithScore with the weights of `vae`, its score table from the images `test` and
    its OOD score fitted on `train` (for a model without labels: no classifier, no
    per-class densities)."""
    score_images = test[: cfg.score_images] if cfg.score_images else test
    ood_images = OODImages(train, test)
    model = VAEWithScore(VAEConfig(**model_config), len(score_images), **ood_sizes(ood_images, cfg))
    model.load_state_dict(vae.state_dict(), strict=False)
    model.eval()
    figures = fit_score(model, score_images, cfg) | fit_ood(model, ood_images, cfg)
    return model, {"config": asdict(cfg), **figures}
