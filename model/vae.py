"""The VAE (Kingma & Welling 2014): a diagonal-Gaussian encoder q(z|x), a Bernoulli decoder
p(x|z) and a standard-normal prior p(z), with the bounds used to train and evaluate it. For
8-bit images (colour or grey, `vae-train --images`) the decoder can be a discretised logistic
per value instead (VAEConfig.likelihood; Salimans et al. 2017).

Every quantity is in nats per image. The module is scriptable: `torch.jit.script(VAE(cfg))`
keeps the exported methods. The service calls `encode`, `decode` and `reconstruct` (and
`kl_divergence` when present: app/inference.py); evaluation uses `decode_logits`, the plots
`sample`; an exported file offers all five (model/export.py, REQUIRED_METHODS).
"""

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model import artifact

IMAGE_SHAPE = (1, 28, 28)  # MNIST's, the default of VAEConfig.image_shape
N_PIXELS = 28 * 28


@dataclass
class VAEConfig:
    arch: str = "mlp"  # "mlp": fully connected; "conv": strided convolutions
    latent_dim: int = 32  # D, size of z
    hidden: list[int] = field(default_factory=lambda: [512, 512])  # MLP widths (decoder mirrors)
    channels: list[int] = field(default_factory=lambda: [32, 64])  # conv widths, 28->14->7
    conv_hidden: int = 512  # width of the dense layer after the convolutions
    image_shape: list[int] = field(default_factory=lambda: list(IMAGE_SHAPE))  # C, H, W
    activation: str = "gelu"  # "gelu" | "relu" (the dSprites conv VAE of Burgess et al. 2018)
    # p(x|z) per value: "bernoulli" (binary pixels; grey levels as soft targets) or
    # "discretised_logistic" (8-bit values, 256 bins; Salimans et al. 2017, PixelCNN++)
    likelihood: str = "bernoulli"


ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}
# Decoder outputs per image value: a logit, or the logistic's location and log scale.
LIKELIHOODS = {"bernoulli": 1, "discretised_logistic": 2}


def image_shape(cfg: VAEConfig) -> tuple[int, int, int]:
    c, h, w = cfg.image_shape
    return c, h, w


def n_pixels(cfg: VAEConfig) -> int:
    c, h, w = image_shape(cfg)
    return c * h * w


def decoder_channels(cfg: VAEConfig) -> int:
    """Channels of the decoder's output: C logits, or 2C (location, log scale) per value."""
    if cfg.likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {cfg.likelihood!r} (expected one of "
                         f"{', '.join(LIKELIHOODS)})")  # fmt: skip
    return image_shape(cfg)[0] * LIKELIHOODS[cfg.likelihood]


def conv_grid(cfg: VAEConfig) -> tuple[int, int]:
    """Height and width after the strided convolutions, each halving: 28 -> 7, 64 -> 4."""
    _, h, w = image_shape(cfg)
    factor = 2 ** len(cfg.channels)
    if h % factor or w % factor:
        raise ValueError(f"image {h}x{w} is not divisible by 2^{len(cfg.channels)}")
    return h // factor, w // factor


def mlp(sizes: list[int], final_activation: bool, act: type[nn.Module] = nn.GELU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if final_activation or i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def build_encoder(cfg: VAEConfig) -> nn.Module:
    """x (N, C, H, W) -> features (N, F); a linear head then gives mu and log sigma.

    conv: one 4x4 stride-2 convolution per entry of `channels`, each halving H and W
    (MNIST [32, 64]: 28 -> 14 -> 7; dSprites [32, 32, 64, 64]: 64 -> 32 -> 16 -> 8 -> 4,
    disentanglement_lib's conv_encoder), then one dense layer of `conv_hidden`.
    """
    act = ACTIVATIONS[cfg.activation]
    if cfg.arch == "mlp":
        sizes = [n_pixels(cfg), *cfg.hidden]
        return nn.Sequential(nn.Flatten(), mlp(sizes, final_activation=True, act=act))
    if cfg.arch == "conv":
        h, w = conv_grid(cfg)
        layers: list[nn.Module] = []
        widths = [image_shape(cfg)[0], *cfg.channels]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), act()]  # H, W halved
        layers += [nn.Flatten(), nn.Linear(widths[-1] * h * w, cfg.conv_hidden), act()]
        return nn.Sequential(*layers)
    raise ValueError(f"unknown arch {cfg.arch!r} (expected 'mlp' or 'conv')")


def build_decoder(cfg: VAEConfig) -> nn.Module:
    """z (N, D) -> Bernoulli logits (N, C, H, W), or for the discretised logistic its
    locations and log scales (N, 2C, H, W); the conv decoder mirrors the encoder."""
    act = ACTIVATIONS[cfg.activation]
    _, h, w = image_shape(cfg)
    c_out = decoder_channels(cfg)
    if cfg.arch == "mlp":
        sizes = [cfg.latent_dim, *reversed(cfg.hidden), c_out * h * w]
        unflatten = nn.Unflatten(1, (c_out, h, w))
        return nn.Sequential(mlp(sizes, final_activation=False, act=act), unflatten)
    if cfg.arch == "conv":
        h, w = conv_grid(cfg)
        widths = [c_out, *cfg.channels][::-1]  # e.g. 64, 32, 1
        layers: list[nn.Module] = [
            nn.Linear(cfg.latent_dim, cfg.conv_hidden),
            act(),
            nn.Linear(cfg.conv_hidden, widths[0] * h * w),
            act(),
            nn.Unflatten(1, (widths[0], h, w)),
        ]
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))  # H, W x2
            if i < len(widths) - 2:
                layers.append(act())
        return nn.Sequential(*layers)
    raise ValueError(f"unknown arch {cfg.arch!r} (expected 'mlp' or 'conv')")


def encoder_width(cfg: VAEConfig) -> int:
    return cfg.hidden[-1] if cfg.arch == "mlp" else cfg.conv_hidden


class VAE(nn.Module):
    latent_dim: int
    likelihood: str  # VAEConfig.likelihood, kept in the exported file

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.latent_dim = cfg.latent_dim
        self.likelihood = cfg.likelihood
        self.encoder = build_encoder(cfg)
        self.to_params = nn.Linear(encoder_width(cfg), 2 * cfg.latent_dim)  # -> (mu, log sigma)
        self.decoder = build_decoder(cfg)
        # Marks the module's device so that `sample` draws z where the weights are.
        self.register_buffer("device_marker", torch.zeros(()), persistent=False)

    @torch.jit.export
    def encode_params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (N, C, H, W) in [0, 1] -> mu (N, D), log sigma (N, D)."""
        mu, log_sigma = self.to_params(self.encoder(x)).chunk(2, dim=-1)
        return mu, log_sigma.clamp(-12.0, 6.0)  # keeps exp() finite on out-of-distribution input

    @torch.jit.export
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (N, C, H, W) in [0, 1] -> mu (N, D), sigma (N, D) > 0 of q(z|x)."""
        mu, log_sigma = self.encode_params(x)
        return mu, log_sigma.exp()

    @torch.jit.export
    def kl_divergence(self, mu: Tensor, sigma: Tensor) -> Tensor:
        """KL(q(z|x) || N(0, I)) per image, nats: (N, D), (N, D) -> (N,)."""
        return gaussian_kl(mu, sigma.log())

    @torch.jit.export
    def decode_logits(self, z: Tensor) -> Tensor:
        """z (N, D) -> the parameters of p(x|z): Bernoulli logits (N, C, H, W), or for the
        discretised logistic locations and log scales concatenated (N, 2C, H, W)."""
        return self.decoder(z)

    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        """z (N, D) -> the means of p(x|z), (N, C, H, W) in [0, 1]: pixel probabilities, or
        the discretised logistic's means."""
        params = self.decoder(z)
        if self.likelihood == "discretised_logistic":
            loc, log_scale = params.chunk(2, dim=-3)
            return logistic_mean(loc, log_scale)
        return torch.sigmoid(params)

    @torch.jit.export
    def reconstruct(self, x: Tensor) -> Tensor:
        """The decoded mean of q(z|x): a deterministic reconstruction."""
        mu, _ = self.encode_params(x)
        return self.decode(mu)

    @torch.jit.export
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """n images decoded from z ~ N(0, temperature^2 I)."""
        z = torch.randn(n, self.latent_dim, device=self.device_marker.device)
        return self.decode(z * temperature)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One reparameterized pass: (logits of p(x|z), mu, log sigma)."""
        mu, log_sigma = self.encode_params(x)
        z = reparameterize(mu, log_sigma)
        return self.decode_logits(z), mu, log_sigma


def reparameterize(mu: Tensor, log_sigma: Tensor) -> Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): a sample whose gradient reaches mu and sigma."""
    return mu + log_sigma.exp() * torch.randn_like(mu)


def reparameterize_k(mu: Tensor, log_sigma: Tensor, k: int) -> Tensor:
    """k reparameterized samples per image: (N, D) -> (k, N, D)."""
    shape = [k] + list(mu.shape)  # a list, not *mu.shape: TorchScript compiles this
    return reparameterize(mu.expand(shape), log_sigma.expand(shape))


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x|z) summed over pixels: (..., C, H, W) -> (...)."""
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(
        dim=(-3, -2, -1)
    )


def logistic_scale_log(log_scale: Tensor) -> Tensor:
    """The decoder's log scale, bounded below at -7 as in PixelCNN++'s code (s >= 9e-4, a
    tenth of a 1/255 bin): the bounds stay finite however sharp the decoder gets."""
    return log_scale.clamp(min=-7.0)


def discretised_logistic_log_likelihood(params: Tensor, x: Tensor) -> Tensor:
    """log p(x|z) of 8-bit values under a discretised logistic per value (Salimans et al.
    2017, "PixelCNN++", eq. 2; one component, no mixture, channels independent given z),
    summed over values: params (..., 2C, H, W) = (location, log scale), x (..., C, H, W)
    in [0, 1] on the grid k/255 -> (...).

    P(x) = sigma((x + 1/510 - mu) / s) - sigma((x - 1/510 - mu) / s): the logistic's mass in
    the bin of width 1/255 around x; the edge bins 0 and 1 take the tails to -inf and +inf.
    Where the bin's mass underflows (< 1e-5) the density at x times the bin width stands in,
    as in PixelCNN++'s code.
    """
    loc, log_scale = params.chunk(2, dim=-3)
    log_scale = logistic_scale_log(log_scale)
    x = x.expand_as(loc)
    centred = x - loc
    inv_scale = torch.exp(-log_scale)
    plus_in = inv_scale * (centred + 0.5 / 255.0)
    min_in = inv_scale * (centred - 0.5 / 255.0)
    log_cdf_plus = plus_in - F.softplus(plus_in)  # log sigma(plus_in): the bin of x = 0
    log_one_minus_cdf_min = -F.softplus(min_in)  # log (1 - sigma(min_in)): the bin of x = 1
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_scale * centred
    log_pdf_mid = mid_in - log_scale - 2.0 * F.softplus(mid_in)
    log_bin = math.log(255.0)  # a local: TorchScript cannot read a global float
    inner = torch.where(
        cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_pdf_mid - log_bin
    )
    top = torch.where(x > 1.0 - 0.5 / 255.0, log_one_minus_cdf_min, inner)
    log_p = torch.where(x < 0.5 / 255.0, log_cdf_plus, top)
    return log_p.sum(dim=(-3, -2, -1))


def logistic_mean(loc: Tensor, log_scale: Tensor) -> Tensor:
    """Mean of the logistic(loc, s) clipped to [0, 1], the discretised distribution's mean up
    to the rounding to 1/255: E = int_0^1 P(X > t) dt = 1 - s (softplus((1 - loc) / s) -
    softplus(-loc / s)). (N, C, H, W) each -> (N, C, H, W) in [0, 1]."""
    scale = logistic_scale_log(log_scale).exp()
    mean = 1.0 - scale * (F.softplus((1.0 - loc) / scale) - F.softplus(-loc / scale))
    return mean.clamp(0.0, 1.0)


def log_likelihood(params: Tensor, x: Tensor, likelihood: str) -> Tensor:
    """log p(x|z) summed over values, for the decoder's output `params` (decode_logits) and
    images x (..., C, H, W) in [0, 1] -> (...). A mismatch of channels is an error, never a
    silent broadcast (a grey image against 2 channels of logistic parameters)."""
    c = x.shape[-3]
    if likelihood == "discretised_logistic":
        if params.shape[-3] != 2 * c:
            raise ValueError("discretised_logistic needs 2C decoder channels")
        return discretised_logistic_log_likelihood(params, x)
    if likelihood != "bernoulli":
        raise ValueError("unknown likelihood: expected bernoulli or discretised_logistic")
    if params.shape[-3] != c:
        raise ValueError("bernoulli needs C decoder channels")
    return bernoulli_log_likelihood(params, x)


def likelihood_of(model) -> str:
    """A model's likelihood; files exported before it was recorded are Bernoulli."""
    return str(getattr(model, "likelihood", "bernoulli"))


def gaussian_kl(mu: Tensor, log_sigma: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) in closed form, summed over D: (N, D) -> (N,)."""
    return 0.5 * (mu.pow(2) + (2 * log_sigma).exp() - 1 - 2 * log_sigma).sum(dim=-1)


def gaussian_log_density(z: Tensor, mu: Tensor, log_sigma: Tensor) -> Tensor:
    """log N(z; mu, sigma^2 I) summed over the last dimension."""
    log_2pi = math.log(2 * math.pi)  # a local: TorchScript cannot read a global float
    return (-0.5 * ((z - mu) / log_sigma.exp()).pow(2) - log_sigma - 0.5 * log_2pi).sum(dim=-1)


def elbo_terms(model: VAE, x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image reconstruction term E_q[log p(x|z)] (one sample) and KL, each (N,)."""
    params, mu, log_sigma = model(x)
    return log_likelihood(params, x, model.likelihood), gaussian_kl(mu, log_sigma)


with artifact.torchscript():  # torch.jit's deprecation warning, silenced as in artifact

    @torch.jit.interface
    class LatentVariableModel(nn.Module):
        """What iwae_log_weights needs; as a TorchScript interface, a VAE method (score,
        model/heads.py) can pass `self` to it."""

        def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
            pass

        def decode_logits(self, z: Tensor) -> Tensor:
            pass


def log_weight_terms(
    model: LatentVariableModel,
    x: Tensor,
    mu: Tensor,
    log_sigma: Tensor,
    k: int,
    likelihood: str = "bernoulli",
) -> tuple[Tensor, Tensor]:
    """The two parts of the importance log-weights for k samples z_k ~ q(z|x) per image:
    log p(x|z_k) and log p(z_k) - log q(z_k|x), each (k, N). The one place they are written:
    training (which scales the second by beta) and evaluation both call it.

    The k samples of all N images are decoded as one batch of k*N rows. `likelihood` is the
    model's (VAE.likelihood; `likelihood_of` for a loaded file).
    """
    z = reparameterize_k(mu, log_sigma, k)  # (k, N, D)
    params = model.decode_logits(z.flatten(0, 1)).unflatten(0, (k, x.shape[0]))
    log_px_z = log_likelihood(params, x, likelihood)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
    return log_px_z, log_pz - gaussian_log_density(z, mu, log_sigma)


def iwae_log_weights(
    model: LatentVariableModel, x: Tensor, k: int, likelihood: str = "bernoulli"
) -> Tensor:
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x) for k samples per image: (k, N).

    `model` is anything with `encode` and `decode_logits` (the eager VAE or the
    exported TorchScript module), so the shipped file can be evaluated directly; pass its
    `likelihood_of(model)`.
    """
    mu, sigma = model.encode(x)
    log_px_z, log_prior_ratio = log_weight_terms(model, x, mu, sigma.log(), k, likelihood)
    return log_px_z + log_prior_ratio


def iwae_bound(log_w: Tensor) -> Tensor:
    """log (1/K) sum_k w_k per image (Burda et al. 2015): (K, N) -> (N,). K=1 is the ELBO."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def training_loss(model: VAE, x: Tensor, k: int = 1, beta: float = 1.0) -> dict[str, Tensor]:
    """Mean loss over the batch and its parts.

    k=1: the negative ELBO, -E_q[log p(x|z)] + beta * KL (closed form; beta<1 is KL warm-up).
    k>1: the negative IWAE bound with k samples; beta scales log p(z) - log q(z|x).
    """
    if k == 1:
        recon, kl = elbo_terms(model, x)
        loss = -(recon - beta * kl)
    else:
        mu, log_sigma = model.encode_params(x)
        log_px_z, log_prior_ratio = log_weight_terms(model, x, mu, log_sigma, k, model.likelihood)
        loss = -iwae_bound(log_px_z + beta * log_prior_ratio)
        recon, kl = log_px_z.mean(0), gaussian_kl(mu, log_sigma)
    return {"loss": loss.mean(), "recon": recon.mean().detach(), "kl": kl.mean().detach()}
