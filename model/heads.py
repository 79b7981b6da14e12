"""The VAE with what is fitted on it at export time: a likelihood score with its test-set
table, a digit classifier on mu, and per-digit densities in latent space.

`VAEWithHeads` keeps every method and parameter name of `VAE` (model/vae.py) and adds
buffers and exported methods; model/fit_heads.py fills them from the MNIST training and
test sets. An exported file that has these methods offers the capabilities "score",
"classify" and "conditional_sampling" (CAPABILITIES); an older file simply lacks them.
`VAEWithScore` has the score alone: a model trained on images without labels
(`vae-train --images`) offers it, and the service answers 501 for the other two.

Grey levels: the decoder is a Bernoulli model of binary pixels. For x in [0, 1] every
log p(x|z) here is the expectation over binarizations b ~ Bernoulli(x) (independent per
pixel), sum_i x_i log p_i + (1 - x_i) log(1 - p_i): the cross-entropy with soft targets,
which for binary x is exactly log p(x|z). A model with the discretised logistic likelihood
(model/vae.py) scores 8-bit values with it instead: `self.likelihood` picks.
"""

import math

import torch
from torch import Tensor

from model import ood
from model.vae import VAE, VAEConfig, iwae_bound, iwae_log_weights, mlp

N_DIGITS = 10
CAPABILITIES = {  # capability -> the exported method that provides it
    "score": "score",
    "classify": "classify",
    "conditional_sampling": "digit_latents",
}
ScoreOutputs = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]
SCORE_OUTPUTS = (  # what `score` returns, in order, each (N,)
    "elbo",
    "reconstruction",
    "kl",
    "log_likelihood",
    "bits_per_dim",
    "percentile",
    "ood_score",
    "ood_percentile",
    "typical",
)
OOD_STATISTICS = ("log_likelihood", "reconstruction", "kl", "context_log_likelihood", "grey_share")
OOD_LEVELS = 4


class VAEWithScore(VAE):
    """The VAE and its score: the IWAE log-likelihood with its test-set table, and the
    out-of-distribution score that decides `typical` (model/ood.py, issue 26): a kernel
    density over four statistics of each image, fitted on the model's own training images,
    its table and threshold on held-out images."""

    score_k: int  # importance samples behind score_table and the OOD fit
    ood_levels: int  # grey levels of the context background's neighbours

    def __init__(
        self, cfg: VAEConfig, table_size: int = 1, ood_points: int = 1, ood_table_size: int = 1
    ) -> None:
        super().__init__(cfg)
        self.score_k = 1
        self.ood_levels = OOD_LEVELS
        # Sorted log-likelihoods of held-out images (MNIST: the test digits; grey levels,
        # K = score_k), behind `percentile`.
        self.register_buffer("score_table", torch.zeros(table_size))
        # The OOD score: P(white | causal context) per channel (C, levels**4), the kernel
        # density over OOD_STATISTICS (mean, whitening, whitened training points,
        # bandwidth), the sorted scores of held-out images and the `typical` threshold.
        channels = cfg.image_shape[0]
        n_stats = len(OOD_STATISTICS)
        self.register_buffer("ood_context", torch.full((channels, OOD_LEVELS**4), 0.5))
        self.register_buffer("ood_mean", torch.zeros(n_stats))
        self.register_buffer("ood_whitening", torch.eye(n_stats))
        self.register_buffer("ood_points", torch.zeros(ood_points, n_stats))
        self.register_buffer("ood_bandwidth", torch.ones(()))
        self.register_buffer("ood_table", torch.zeros(ood_table_size))
        self.register_buffer("typical_threshold", torch.zeros(()))

    @torch.jit.export
    def score(self, x: Tensor, k: int) -> ScoreOutputs:
        """How likely and how typical x (N, C, H, W) is, each (N,): ELBO, its parts
        E_q[log p(x|z)] and KL, the IWAE log-likelihood bound with k samples (one decode of
        k*N rows), bits per dimension, the percentile of the log-likelihood among held-out
        images, the OOD score (higher = more like the training images), its percentile among
        held-out images, and typical (OOD score at or above the threshold)."""
        log_w = iwae_log_weights(self, x, k, self.likelihood)  # (k, N)
        mu, sigma = self.encode(x)
        kl = self.kl_divergence(mu, sigma)
        elbo = log_w.mean(0)  # Monte-Carlo ELBO over the same k samples
        reconstruction = elbo + kl  # unbiased estimate of E_q[log p(x|z)]; parts sum exactly
        log_likelihood = iwae_bound(log_w)
        bits_per_dim = -log_likelihood / (x[0].numel() * math.log(2.0))
        ood = self.ood_score(self.ood_statistics(x, log_likelihood, reconstruction, kl))
        return (
            elbo,
            reconstruction,
            kl,
            log_likelihood,
            bits_per_dim,
            self.percentile(log_likelihood),
            ood,
            self.ood_percentile(ood),
            ood >= self.typical_threshold,
        )

    @torch.jit.export
    def ood_statistics(
        self, x: Tensor, log_likelihood: Tensor, reconstruction: Tensor, kl: Tensor
    ) -> Tensor:
        """The statistics the OOD density is over, (N, 5): OOD_STATISTICS' order."""
        context = ood.context_log_likelihood(x, self.ood_context, self.ood_levels)
        grey = ood.grey_share(x)
        return torch.stack([log_likelihood, reconstruction, kl, context.to(kl.dtype), grey], 1)

    @torch.jit.export
    def ood_score(self, statistics: Tensor) -> Tensor:
        """The kernel log-density of ood_statistics (N, 5) -> (N,), in the input's dtype."""
        density = ood.kde_log_density(
            statistics, self.ood_mean, self.ood_whitening, self.ood_points, self.ood_bandwidth
        )
        return density.to(statistics.dtype)

    @torch.jit.export
    def percentile(self, log_likelihood: Tensor) -> Tensor:
        """Share of held-out images (in %) with a lower log-likelihood: (N,) -> (N,)."""
        return rank_percentile(self.score_table, log_likelihood)

    @torch.jit.export
    def ood_percentile(self, ood_score: Tensor) -> Tensor:
        """Share of held-out images (in %) with a lower OOD score: (N,) -> (N,)."""
        return rank_percentile(self.ood_table, ood_score)


def rank_percentile(table: Tensor, values: Tensor) -> Tensor:
    """Share (in %) of the sorted `table` below each of `values`: (N,) -> (N,)."""
    below = torch.searchsorted(table, values.to(table.dtype).contiguous())
    return below.to(values.dtype) * (100.0 / table.numel())


class VAEWithHeads(VAEWithScore):
    """The VAE, its score, a classifier on mu and a latent density per class."""

    class_candidates: int  # draws per conditional sample, the first one accepted is kept

    def __init__(
        self,
        cfg: VAEConfig,
        n_components: int = 1,
        table_size: int = 1,
        head_hidden: int = 256,
        n_classes: int = N_DIGITS,  # 10 digits; dSprites: 3 shapes (the `digit_*` names stay)
        ood_points: int = 1,
        ood_table_size: int = 1,
    ) -> None:
        super().__init__(cfg, table_size, ood_points, ood_table_size)
        d, k = cfg.latent_dim, n_classes
        self.classifier = mlp([d, head_hidden, head_hidden, k], final_activation=False)
        # A Gaussian mixture over mu per class: weights (K, C), means (K, C, D) and the
        # Cholesky factors of the covariances (K, C, D, D).
        self.register_buffer("digit_weights", torch.full((k, n_components), 1.0))
        self.register_buffer("digit_means", torch.zeros(k, n_components, d))
        self.register_buffer("digit_scale_tril", torch.eye(d).expand(k, n_components, d, d).clone())
        # Conditional samples are drawn with rejection by the classifier: of
        # class_candidates draws, the first whose class probability is at least
        # class_acceptance (else the most probable); 1 and 0 draw from the mixture alone.
        self.class_candidates = 1
        self.register_buffer("class_acceptance", torch.zeros(()))

    @torch.jit.export
    def classify(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (N, C, H, W) -> class probabilities (N, K) from the head on mu, and mu (N, D)."""
        mu, _ = self.encode_params(x)
        return torch.softmax(self.classifier(mu), dim=-1), mu

    @torch.jit.export
    def digit_latents(self, digits: Tensor, eps: Tensor, u: Tensor, temperature: float) -> Tensor:
        """z (N, D) of each requested class (N,), from up to R candidates each: eps (N, R, D)
        ~ N(0, I) and u (N, R) ~ U(0, 1). Candidate i of a row is the mixture component
        whose cumulative weight passes u[:, i], then mean + temperature * L eps[:, i]; the
        first candidate the classifier gives the class with probability >= class_acceptance
        is kept (else the most probable one). The caller draws eps and u, so a seed
        reproduces the result. Candidates are drawn only for rows still without one, as
        most rows keep their first: drawing all 16 at once cost 5x more (docs/CHANGELOG)."""
        z = self.class_candidate(digits, eps[:, 0], u[:, 0], temperature)
        if eps.shape[1] == 1:
            return z
        best = self.class_probability(z, digits)
        done = best >= self.class_acceptance
        for i in range(1, eps.shape[1]):
            rows = (~done).nonzero().squeeze(1)
            if rows.numel() == 0:
                break
            classes = digits[rows]
            candidate = self.class_candidate(classes, eps[rows, i], u[rows, i], temperature)
            p = self.class_probability(candidate, classes)
            better = p > best[rows]  # the first maximum stays, as argmax keeps it
            z[rows[better]] = candidate[better]
            best[rows[better]] = p[better]
            done[rows] = p >= self.class_acceptance
        return z

    def class_candidate(self, digits: Tensor, eps: Tensor, u: Tensor, temperature: float) -> Tensor:
        """One draw per row from its class's mixture: digits (M,), eps (M, D), u (M,)."""
        cumulative = self.digit_weights[digits].cumsum(-1)  # (M, C)
        draws = u.unsqueeze(-1).to(cumulative.dtype).contiguous()
        component = torch.searchsorted(cumulative, draws).squeeze(-1)
        component = component.clamp(max=cumulative.shape[-1] - 1)
        means = self.digit_means[digits, component]  # (M, D)
        tril = self.digit_scale_tril[digits, component]  # (M, D, D)
        return means + temperature * (tril @ eps.unsqueeze(-1)).squeeze(-1)

    def class_probability(self, z: Tensor, digits: Tensor) -> Tensor:
        """The classifier's probability of each row's class: z (M, D), digits (M,) -> (M,)."""
        probabilities = torch.softmax(self.classifier(z), -1)
        return probabilities.gather(1, digits.unsqueeze(1)).squeeze(1)


def capabilities_of(module) -> list[str]:
    """The capabilities an eager or TorchScript module offers, by its methods."""
    return [name for name, method in CAPABILITIES.items() if hasattr(module, method)]


def heads_shapes(state: dict[str, Tensor]) -> dict[str, int]:
    """VAEWithHeads constructor arguments that reproduce the buffers of a state_dict."""
    return {
        "n_components": state["digit_weights"].shape[1],
        "table_size": state["score_table"].shape[0],
        "head_hidden": state["classifier.0.weight"].shape[0],
        "n_classes": state["digit_weights"].shape[0],
        "ood_points": state["ood_points"].shape[0],
        "ood_table_size": state["ood_table"].shape[0],
    }
