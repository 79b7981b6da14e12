"""Fit the heads of VAEWithHeads (model/heads.py) on a trained VAE, encoder frozen.

Called by `vae-export --heads` (the default). From the 60k MNIST training digits (grey
levels, as the service sees them) it fits
- a classifier on mu (the "M1" use of a VAE, Kingma et al. 2014): a small MLP trained on
  z ~ q(z|x) drawn afresh each epoch, so it also sees the spread of q around mu;
- one Gaussian mixture over mu per digit (EM, full covariances), for conditional sampling;
and from the 10k test digits the sorted table of IWAE log-likelihoods behind `percentile`,
with the `typical` threshold at a low percentile of it. It reports the test accuracy and
confusion matrix of the classifier.
"""

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor
from torch.distributions import MultivariateNormal
from tqdm import tqdm

from model.data import load_mnist, to_unit
from model.heads import N_DIGITS, VAEWithHeads, VAEWithScore
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
) -> tuple[VAEWithHeads, dict]:
    """A VAEWithHeads with the weights of `vae` and fitted heads, and its figures."""
    torch.manual_seed(cfg.seed)
    score_images = test.images[: cfg.score_images] if cfg.score_images else test.images
    model = VAEWithHeads(
        VAEConfig(**model_config), cfg.n_components, len(score_images), cfg.head_hidden, n_classes
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

    figures = {
        "config": asdict(cfg),
        "classifier_test_accuracy": accuracy,
        "confusion_matrix": confusion.tolist(),
        **fit_score(model, score_images, cfg),
    }
    return model, figures


def fit_score(model: VAEWithScore, score_images: Tensor, cfg: HeadsConfig) -> dict:
    """Fills the score table (sorted IWAE log-likelihoods of `score_images`) and the
    `typical` threshold of `model`; returns their figures."""
    torch.manual_seed(cfg.seed)
    table = log_likelihoods(model, score_images, cfg.score_k).sort().values
    model.score_table.copy_(table)
    threshold = torch.quantile(table, cfg.typical_percentile / 100)
    model.typical_threshold.copy_(threshold)
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
        "typical_threshold": threshold.item(),
    }


def fit_score_head(
    vae: VAE, model_config: dict, test: Tensor, cfg: HeadsConfig
) -> tuple[VAEWithScore, dict]:
    """A VAEWithScore with the weights of `vae` and its score table from the images `test`
    (for a model without labels: no classifier, no per-class densities)."""
    score_images = test[: cfg.score_images] if cfg.score_images else test
    model = VAEWithScore(VAEConfig(**model_config), len(score_images))
    model.load_state_dict(vae.state_dict(), strict=False)
    model.eval()
    return model, {"config": asdict(cfg), **fit_score(model, score_images, cfg)}
