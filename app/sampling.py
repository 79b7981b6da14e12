"""Seeded draws for the stochastic outputs: every random choice of a request comes from one
torch.Generator, so the same seed gives the same result (the seed is returned as X-Seed or
`seed`). The distributions are the model's: z ~ q(z|x) from the encoder's mu and sigma,
binary pixels ~ p(x|z) from the decoder's probabilities."""

import random

import torch
from torch import Tensor


def fresh_seed() -> int:
    """A seed for a request that gives none: from the random module's generator, which
    Python seeds from the OS at start-up and again in a forked child; not an os.urandom
    call per request (secrets.randbits)."""
    return random.getrandbits(63)


def seeded(seed: int | None) -> tuple[torch.Generator, int]:
    """A CPU generator seeded with `seed`, or with a fresh random seed (returned)."""
    seed = fresh_seed() if seed is None else seed
    return torch.Generator().manual_seed(seed), seed


def posterior_draw(mu: Tensor, sigma: Tensor, generator: torch.Generator) -> Tensor:
    """z ~ q(z|x) = N(mu, sigma^2): (N, D) each -> (N, D)."""
    return mu + sigma * torch.randn(mu.shape, generator=generator)


def bernoulli_pixels(probabilities: Tensor, generator: torch.Generator) -> Tensor:
    """Binary images drawn from p(x|z): each pixel white with its probability."""
    return torch.bernoulli(probabilities, generator=generator)
