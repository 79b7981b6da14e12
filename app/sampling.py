"""Seeded draws for the stochastic outputs: every random choice of a request comes from one
torch.Generator, so the same seed gives the same result (the seed is returned as X-Seed or
`seed`). The distributions are the model's: z ~ q(z|x) from the encoder's mu and sigma,
binary pixels ~ p(x|z) from the decoder's probabilities."""

import os
import random

import torch
from torch import Tensor


class Seeds:
    """Fresh seeds for requests that give none: a generator seeded from the OS once per
    process (and again in a forked child), not an os.urandom call per request."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.source = random.Random(os.urandom(16))

    def next(self) -> int:
        return self.source.getrandbits(63)


SEEDS = Seeds()


def seeded(seed: int | None) -> tuple[torch.Generator, int]:
    """A CPU generator seeded with `seed`, or with a fresh random seed (returned)."""
    seed = SEEDS.next() if seed is None else seed
    return torch.Generator().manual_seed(seed), seed


def posterior_draw(mu: Tensor, sigma: Tensor, generator: torch.Generator) -> Tensor:
    """z ~ q(z|x) = N(mu, sigma^2): (N, D) each -> (N, D)."""
    return mu + sigma * torch.randn(mu.shape, generator=generator)


def bernoulli_pixels(probabilities: Tensor, generator: torch.Generator) -> Tensor:
    """Binary images drawn from p(x|z): each pixel white with its probability."""
    return torch.bernoulli(probabilities, generator=generator)
