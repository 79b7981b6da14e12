"""Out-of-distribution scores on top of a VAE's likelihood (issue 26): "does this upload look
like what the model was trained on?"

The raw log-likelihood fails on simple inputs: letters score *higher* than MNIST digits
(Nalisnick et al. 2019), because a pixel likelihood mostly counts how much ink and how many
grey levels must be explained. Each score here corrects for that, and everything it needs is
computed from the model's own training images and stored as plain tensors or numbers, so it
works for any model the service loads (image shape from the input, (N, C, H, W) in [0, 1]):

- input complexity (Serra et al. 2020): S(x) = -log2 p(x) - L(x), where L(x) is the length
  in bits of x under a generic lossless compressor (PNG, bz2, lzma of the 8-bit image): a
  likelihood ratio against a "universal" background model. Needs nothing fitted.
- a likelihood ratio against a background model (Ren et al. 2019): log p(x) - log p_bg(x),
  p_bg a local-context model (each pixel's Bernoulli given its quantised causal neighbours,
  a table of counts from the training images; `fit_context_background`) or a
  pixel-independent one (`fit_pixel_background`).
- a typicality test on summary statistics (DoSE, Morningstar et al. 2021): the Mahalanobis
  distance of (statistics of x) to their training distribution (`fit_gaussian`), or their
  kernel density (`fit_kde`): the method docs/capabilities.md chooses, over (log-likelihood,
  reconstruction, KL, context-background log-likelihood, PNG bits).

Every score is "higher = more like the training data"; `threshold_at` sets a threshold on
held-out in-distribution scores, `auroc` measures a score against an outlier set.
model/evaluate_ood.py compares them (docs/capabilities.md).
"""

import bz2
import io
import lzma
import math
import zlib

import numpy as np
import torch
from PIL import Image
from torch import Tensor

CODECS = ("png", "bz2", "lzma", "zlib")
LN2 = math.log(2.0)
# No container header (xz's is 60 bytes); a 64 KiB dictionary (preset 9 allocates 64 MiB
# per call: 40 ms per 28x28 image here, against 0.1 ms).
LZMA_RAW = [{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": 1 << 16}]


def eight_bit(x: Tensor) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> uint8 (N, H, W, C): the bytes a codec compresses."""
    values = (x.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    return values.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 (H, W, C), C = 1 or 3 -> a PNG (Pillow, best compression: adaptive filters)."""
    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def compressed_bits(x: Tensor, codec: str = "png", binary: bool = False) -> Tensor:
    """L(x): the length in bits of each 8-bit image under a lossless codec, (N,) float64.
    binary: of the image thresholded at 0.5 (0 or 255), the data a Bernoulli decoder models.

    Headers are counted too: a constant per image shape, so it shifts every score alike."""
    if binary:
        x = (x > 0.5).to(x.dtype)
    compress = {
        "png": png_bytes,
        "bz2": lambda a: bz2.compress(a.tobytes(), 9),
        "lzma": lambda a: lzma.compress(a.tobytes(), format=lzma.FORMAT_RAW, filters=LZMA_RAW),
        "zlib": lambda a: zlib.compress(a.tobytes(), 9),
    }
    if codec not in compress:
        raise ValueError(f"codec {codec!r} is not one of {', '.join(CODECS)}")
    lengths = [8 * len(compress[codec](image)) for image in eight_bit(x)]
    return torch.tensor(lengths, dtype=torch.float64)


def input_complexity(log_likelihood: Tensor, bits: Tensor) -> Tensor:
    """-S(x) = log2 p(x) + L(x) (Serra et al. 2020), higher = more like the training data.

    log_likelihood (N,) in nats; bits (N,) from compressed_bits."""
    return log_likelihood.double() / LN2 + bits.double()


def causal_context(x: Tensor, levels: int) -> Tensor:
    """The context of every pixel: its left, upper-left, upper and upper-right neighbours
    (zero outside the image) quantised to `levels` values, as one index in
    [0, levels**4): (N, C, H, W) -> (N, C, H, W) long. TorchScript: the exported score
    calls it (model/heads.py)."""
    q = (x.clamp(0, 1) * levels).long().clamp(max=levels - 1)
    padded = torch.nn.functional.pad(q, [1, 1, 1, 0])  # (N, C, H+1, W+2), zeros = level 0
    h, w = x.shape[-2], x.shape[-1]
    left = padded[..., 1:, 0:w]
    up_left = padded[..., :h, 0:w]
    up = padded[..., :h, 1 : w + 1]
    up_right = padded[..., :h, 2 : w + 2]
    return ((left * levels + up_left) * levels + up) * levels + up_right


@torch.no_grad()
def fit_context_background(images: Tensor, levels: int = 4, batch: int = 1000) -> Tensor:
    """P(pixel white | its causal context) per channel, (C, levels**4), from training images
    (N, C, H, W) in [0, 1]: soft counts (a grey pixel counts its level as white), add-one."""
    c = images.shape[1]
    white = torch.zeros(c, levels**4, dtype=torch.float64)
    total = torch.zeros(c, levels**4, dtype=torch.float64)
    for x in images.split(batch):
        context = causal_context(x, levels).transpose(0, 1).reshape(c, -1)  # (C, N*H*W)
        white.scatter_add_(1, context, x.transpose(0, 1).reshape(c, -1).double())
        total.scatter_add_(1, context, torch.ones_like(context, dtype=torch.float64))
    return ((white + 1) / (total + 2)).float()


def bernoulli_log_likelihood(x: Tensor, p: Tensor) -> Tensor:
    """sum_i x_i log p_i + (1 - x_i) log(1 - p_i) per image (N,): the soft-target form the
    VAE's Bernoulli score uses for grey levels (model/heads.py), so the two compare."""
    p = p.clamp(1e-6, 1 - 1e-6)
    terms = x * p.log() + (1 - x) * torch.log1p(-p)
    return terms.flatten(1).sum(1)


def context_log_likelihood(x: Tensor, table: Tensor, levels: int = 4) -> Tensor:
    """log p_bg(x) under fit_context_background's table (C, levels**4): (N,) nats."""
    c, n_contexts = table.shape[0], table.shape[1]
    context = causal_context(x, levels)  # (N, C, H, W)
    p = torch.gather(table.unsqueeze(0).expand(x.shape[0], c, n_contexts), 2, context.flatten(2))
    return bernoulli_log_likelihood(x, p.view_as(x))


@torch.no_grad()
def fit_pixel_background(images: Tensor) -> Tensor:
    """Each pixel's mean over the training images, (C, H, W): a pixel-independent model."""
    return images.double().mean(0).clamp(1e-3, 1 - 1e-3).float()


def pixel_log_likelihood(x: Tensor, means: Tensor) -> Tensor:
    """log p_bg(x) with independent Bernoulli pixels of these means (C, H, W): (N,) nats."""
    return bernoulli_log_likelihood(x, means.expand_as(x))


def grey_share(x: Tensor) -> Tensor:
    """The share of values strictly between 0.1 and 0.9, (N, C, H, W) -> (N,): how much
    grey-level detail an image has, which a Bernoulli decoder does not model (what PNG's
    length measured in input complexity, in one TorchScript-able number)."""
    return ((x > 0.1) & (x < 0.9)).flatten(1).to(x.dtype).mean(1)


def fit_gaussian(statistics: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (S,) and inverse covariance (S, S) of training statistics (N, S)."""
    s = statistics.double()
    mean = s.mean(0)
    covariance = torch.cov(s.T).reshape(s.shape[1], s.shape[1])
    ridge = 1e-6 * covariance.diagonal().mean() * torch.eye(s.shape[1], dtype=s.dtype)
    return mean, torch.linalg.inv(covariance + ridge)


def typicality(statistics: Tensor, mean: Tensor, precision: Tensor) -> Tensor:
    """-Mahalanobis distance squared of statistics (N, S) to the training Gaussian: (N,),
    higher = more typical. Two-sided: too likely is as suspicious as too unlikely."""
    d = statistics.double() - mean
    return -((d @ precision) * d).sum(1)


def fit_kde(statistics: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A Gaussian kernel density over training statistics (N, S), whitened by their
    covariance: (mean (S,), whitening (S, S), whitened points (N, S), bandwidth ()), with
    Scott's bandwidth N^(-1/(S+4)). Stored as is: N x S numbers (2,000 x 5 = 40 KB).

    A statistic that does not vary over the training images (grey_share of binary ones,
    dSprites') gets a zero row and column in the whitening, so that it is left out rather
    than turning every image where it differs into an outlier."""
    s = statistics.double()
    varies = s.std(0) > 1e-9 * s.abs().mean(0).clamp(min=1.0)
    mean, precision = fit_gaussian(s[:, varies])
    whitening = torch.zeros(s.shape[1], s.shape[1], dtype=s.dtype)
    # (s - mean) @ whitening has identity covariance over the statistics that vary
    kept = varies.nonzero().squeeze(1)
    whitening[kept.unsqueeze(1), kept] = torch.linalg.cholesky(precision)
    full_mean = s.mean(0)
    full_mean[varies] = mean
    points = (s - full_mean) @ whitening
    dim = int(varies.sum())
    bandwidth = torch.tensor(len(s) ** (-1.0 / (dim + 4)), dtype=torch.float64)
    return full_mean, whitening, points, bandwidth


def kde_log_density(
    statistics: Tensor, mean: Tensor, whitening: Tensor, points: Tensor, bandwidth: Tensor
) -> Tensor:
    """log of the mean kernel over fit_kde's points (up to a constant): (N, S) -> (N,),
    higher = more typical (DoSE's KDE, Morningstar et al. 2021). In the points' dtype
    (float32 in an exported model); TorchScript: the exported score calls it."""
    y = (statistics.to(points.dtype) - mean) @ whitening
    # exact squared distances, (N, n_points); cdist's matrix-product shortcut is not exact
    squared = (y.unsqueeze(1) - points.unsqueeze(0)).pow(2).sum(-1)
    return torch.logsumexp(-squared / (2 * bandwidth**2), 1) - math.log(points.shape[0])


def threshold_at(inlier_scores: Tensor | np.ndarray, rejection: float) -> float:
    """The score below which a share `rejection` of held-out in-distribution images fall."""
    return float(np.quantile(np.asarray(inlier_scores, dtype=np.float64), rejection))


def auroc(inliers: Tensor | np.ndarray, outliers: Tensor | np.ndarray) -> float:
    """P(score of an inlier > score of an outlier), ties counted half (Mann-Whitney U from
    ranks, O(n log n)); 0.5 = chance, 1 = every outlier below every inlier."""
    a = np.asarray(inliers, dtype=np.float64)
    b = np.asarray(outliers, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    values = np.concatenate([a, b])
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    sorted_values = values[order]  # ties get their mean rank
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2
    ranks[order] = np.repeat(mean_rank, counts)
    u = ranks[: len(a)].sum() - len(a) * (len(a) + 1) / 2
    return float(u / (len(a) * len(b)))
