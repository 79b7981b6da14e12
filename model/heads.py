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

from model.vae import VAE, VAEConfig, iwae_bound, iwae_log_weights, mlp

N_DIGITS = 10
CAPABILITIES = {  # capability -> the exported method that provides it
    "score": "score",
    "classify": "classify",
    "conditional_sampling": "digit_latents",
}
ScoreOutputs = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]


class VAEWithScore(VAE):
    """The VAE and its score: the IWAE log-likelihood with its test-set table."""

    score_k: int  # importance samples behind score_table

    def __init__(self, cfg: VAEConfig, table_size: int = 1) -> None:
        super().__init__(cfg)
        self.score_k = 1
        # Sorted log-likelihoods of the MNIST test digits (grey levels, K = score_k), and
        # the `typical` threshold (a low percentile of them).
        self.register_buffer("score_table", torch.zeros(table_size))
        self.register_buffer("typical_threshold", torch.zeros(()))

    @torch.jit.export
    def score(self, x: Tensor, k: int) -> ScoreOutputs:
        """How likely x (N, 1, 28, 28) is, each (N,): ELBO, its parts E_q[log p(x|z)] and
        KL, the IWAE log-likelihood bound with k samples (one decode of k*N rows), bits per
        pixel, the percentile of the log-likelihood among MNIST test digits, typical."""
        log_w = iwae_log_weights(self, x, k, self.likelihood)  # (k, N)
        mu, sigma = self.encode(x)
        kl = self.kl_divergence(mu, sigma)
        elbo = log_w.mean(0)  # Monte-Carlo ELBO over the same k samples
        reconstruction = elbo + kl  # unbiased estimate of E_q[log p(x|z)]; parts sum exactly
        log_likelihood = iwae_bound(log_w)
        bits_per_dim = -log_likelihood / (x[0].numel() * math.log(2.0))
        return (
            elbo,
            reconstruction,
            kl,
            log_likelihood,
            bits_per_dim,
            self.percentile(log_likelihood),
            log_likelihood >= self.typical_threshold,
        )

    @torch.jit.export
    def percentile(self, log_likelihood: Tensor) -> Tensor:
        """Share of MNIST test digits (in %) with a lower log-likelihood: (N,) -> (N,)."""
        table = self.score_table
        below = torch.searchsorted(table, log_likelihood.to(table.dtype).contiguous())
        return below.to(log_likelihood.dtype) * (100.0 / table.numel())


class VAEWithHeads(VAEWithScore):
    """The VAE, its score, a classifier on mu and a latent density per class."""

    def __init__(
        self,
        cfg: VAEConfig,
        n_components: int = 1,
        table_size: int = 1,
        head_hidden: int = 256,
        n_classes: int = N_DIGITS,  # 10 digits; dSprites: 3 shapes (the `digit_*` names stay)
    ) -> None:
        super().__init__(cfg, table_size)
        d, k = cfg.latent_dim, n_classes
        self.classifier = mlp([d, head_hidden, head_hidden, k], final_activation=False)
        # A Gaussian mixture over mu per class: weights (K, C), means (K, C, D) and the
        # Cholesky factors of the covariances (K, C, D, D).
        self.register_buffer("digit_weights", torch.full((k, n_components), 1.0))
        self.register_buffer("digit_means", torch.zeros(k, n_components, d))
        self.register_buffer("digit_scale_tril", torch.eye(d).expand(k, n_components, d, d).clone())

    @torch.jit.export
    def classify(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (N, 1, 28, 28) -> digit probabilities (N, 10) from the head on mu, and mu (N, D)."""
        mu, _ = self.encode_params(x)
        return torch.softmax(self.classifier(mu), dim=-1), mu

    @torch.jit.export
    def digit_latents(self, digits: Tensor, eps: Tensor, u: Tensor, temperature: float) -> Tensor:
        """z (N, D) from the mixture of each requested digit (N,): the component whose
        cumulative weight passes u (N,) ~ U(0, 1), then z = mean + temperature * L eps with
        eps (N, D) ~ N(0, I). The caller draws eps and u, so a seed reproduces the result."""
        cumulative = self.digit_weights[digits].cumsum(-1)  # (N, C)
        component = torch.searchsorted(cumulative, u.unsqueeze(-1).to(cumulative.dtype))
        component = component.squeeze(-1).clamp(max=cumulative.shape[-1] - 1)
        means = self.digit_means[digits, component]  # (N, D)
        tril = self.digit_scale_tril[digits, component]  # (N, D, D)
        return means + temperature * (tril @ eps.unsqueeze(-1)).squeeze(-1)


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
    }
