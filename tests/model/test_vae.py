"""The maths: loss against hand-computed values, KL, reparameterization, IWAE vs ELBO."""

import math

import pytest
import torch

from model import artifact
from model.vae import (
    VAE,
    VAEConfig,
    bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_log_density,
    iwae_bound,
    iwae_log_weights,
    reparameterize,
    training_loss,
)


def test_bernoulli_log_likelihood_by_hand():
    logits = torch.zeros(1, 1, 28, 28)
    logits[0, 0, 0, 0] = 2.0
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 0, 0] = 1.0
    # one pixel: log sigmoid(2); the other 783: log(1 - sigmoid(0)) = log 0.5
    expected = math.log(1 / (1 + math.exp(-2.0))) + 783 * math.log(0.5)
    assert bernoulli_log_likelihood(logits, x).item() == pytest.approx(expected, rel=1e-6)


def test_kl_by_hand():
    mu = torch.tensor([[1.0, 0.0]])
    log_sigma = torch.tensor([[0.0, math.log(2.0)]])
    # 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2) = 0.5 * [(1 + 1 - 1 - 0) + (0 + 4 - 1 - log 4)]
    expected = 0.5 * (1.0 + 3.0 - math.log(4.0))
    assert gaussian_kl(mu, log_sigma).item() == pytest.approx(expected, rel=1e-6)


def test_closed_form_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, log_sigma = torch.randn(3, 5), torch.randn(3, 5) * 0.5
    z = reparameterize(mu.expand(200_000, 3, 5), log_sigma.expand(200_000, 3, 5))
    zeros = torch.zeros_like(z)
    mc = (gaussian_log_density(z, mu, log_sigma) - gaussian_log_density(z, zeros, zeros)).mean(0)
    torch.testing.assert_close(mc, gaussian_kl(mu, log_sigma), atol=0.03, rtol=0.01)


def test_gaussian_log_density_matches_torch_distributions():
    z, mu, log_sigma = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    ref = torch.distributions.Normal(mu, log_sigma.exp()).log_prob(z).sum(-1)
    torch.testing.assert_close(gaussian_log_density(z, mu, log_sigma), ref)


def test_gradients_flow_through_reparameterization():
    mu = torch.zeros(2, 3, requires_grad=True)
    log_sigma = torch.zeros(2, 3, requires_grad=True)
    reparameterize(mu, log_sigma).pow(2).sum().backward()
    assert mu.grad is not None and log_sigma.grad is not None
    assert log_sigma.grad.abs().sum() > 0


def test_loss_is_negative_elbo_and_all_parameters_get_gradients(tiny_model: VAE):
    x = torch.bernoulli(torch.rand(8, 1, 28, 28))
    parts = training_loss(tiny_model.train(), x)
    assert parts["loss"].item() == pytest.approx(-(parts["recon"] - parts["kl"]).item(), rel=1e-5)
    parts["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in tiny_model.parameters())


def test_iwae_bound_is_at_least_elbo_and_tightens_with_k(tiny_model: VAE):
    torch.manual_seed(0)
    x = torch.bernoulli(torch.rand(16, 1, 28, 28))
    with torch.no_grad():
        bounds = {
            k: iwae_bound(iwae_log_weights(tiny_model, x, k)).mean().item() for k in (1, 10, 200)
        }
        elbo = iwae_log_weights(tiny_model, x, 200).mean(0).mean().item()
    assert bounds[10] >= elbo
    assert bounds[1] < bounds[10] < bounds[200]


def test_iwae_bound_equals_logmeanexp():
    log_w = torch.tensor([[0.0], [math.log(3.0)]])
    assert iwae_bound(log_w).item() == pytest.approx(math.log(2.0))


def test_shapes_and_ranges(tiny_model: VAE):
    x = torch.rand(5, 1, 28, 28)
    mu, sigma = tiny_model.encode(x)
    assert mu.shape == sigma.shape == (5, 4) and (sigma > 0).all()
    assert tiny_model.decode(mu).shape == (5, 1, 28, 28)
    samples = tiny_model.sample(3, 0.5)
    assert samples.shape == (3, 1, 28, 28) and samples.min() >= 0 and samples.max() <= 1


def test_conv_variant_has_the_same_contract():
    model = artifact.script(
        VAE(VAEConfig(arch="conv", latent_dim=6, channels=[4, 8], conv_hidden=32))
    )
    mu, sigma = model.encode(torch.rand(2, 1, 28, 28))
    assert mu.shape == (2, 6) and model.reconstruct(torch.rand(2, 1, 28, 28)).shape == (
        2,
        1,
        28,
        28,
    )


def test_unknown_arch_is_refused():
    with pytest.raises(ValueError, match="unknown arch"):
        VAE(VAEConfig(arch="transformer"))


def test_training_and_evaluation_share_the_iwae_log_weights(tiny_model: VAE):
    """training_loss(k) at beta=1 is the negative IWAE bound of iwae_log_weights, same draws."""
    x = torch.bernoulli(torch.rand(5, 1, 28, 28))
    torch.manual_seed(3)
    loss = training_loss(tiny_model, x, k=7)["loss"]
    torch.manual_seed(3)
    bound = iwae_bound(iwae_log_weights(tiny_model, x, 7)).mean()
    torch.testing.assert_close(loss, -bound, rtol=1e-5, atol=1e-4)
