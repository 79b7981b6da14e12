"""model/ood.py: the out-of-distribution scores on tiny inputs, and one floor on the shipped
model (noise against test digits) for the chosen method."""

import numpy as np
import pytest
import torch

from model import artifact, ood
from model.data import load_mnist, split_train_val, to_unit
from tests.conftest import SHIPPED_MODEL


def blank_and_noise(shape=(1, 28, 28)) -> torch.Tensor:
    return torch.stack(
        [torch.zeros(shape), torch.rand(shape, generator=torch.Generator().manual_seed(0))]
    )


@pytest.mark.parametrize("codec", ood.CODECS)
def test_a_blank_image_compresses_to_fewer_bits_than_noise(codec):
    bits = ood.compressed_bits(blank_and_noise(), codec)
    assert bits.shape == (2,)
    assert bits[0] < 0.2 * bits[1]
    assert bits[1] > 4 * 784  # 8-bit noise hardly compresses: ~8 bits a pixel


def test_binary_compression_thresholds_first():
    x = torch.full((1, 1, 28, 28), 0.4)  # all below 0.5: a blank binary image
    assert ood.compressed_bits(x, "png", binary=True) == ood.compressed_bits(x * 0, "png")


def test_compressed_bits_take_any_shape_and_refuse_unknown_codecs():
    assert ood.compressed_bits(torch.rand(3, 3, 16, 24)).shape == (3,)  # RGB
    assert ood.compressed_bits(blank_and_noise((1, 64, 64)), "bz2").shape == (2,)
    with pytest.raises(ValueError, match="codec 'gif'"):
        ood.compressed_bits(torch.zeros(1, 1, 4, 4), "gif")


def test_input_complexity_is_log2_likelihood_plus_bits():
    ll = torch.tensor([-np.log(2.0) * 100])
    assert ood.input_complexity(ll, torch.tensor([30.0])).item() == pytest.approx(-70.0)


def test_auroc_known_cases():
    assert ood.auroc([3, 4, 5], [0, 1, 2]) == 1.0
    assert ood.auroc([0, 1], [2, 3]) == 0.0
    assert ood.auroc([1, 1], [1, 1]) == 0.5  # ties count half
    assert ood.auroc([1, 3], [2, 0]) == 0.75  # 3 of the 4 pairs in order
    assert np.isnan(ood.auroc([], [1.0]))


def test_auroc_equals_the_pairwise_count_with_ties():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 10, 200), rng.integers(0, 12, 150)  # many ties
    pairs = (a[:, None] > b[None, :]).mean() + 0.5 * (a[:, None] == b[None, :]).mean()
    assert ood.auroc(a, b) == pytest.approx(pairs)


def test_context_background_learns_blank_neighbourhoods():
    blank = torch.zeros(20, 1, 28, 28)
    table = ood.fit_context_background(blank)
    assert table.shape == (1, 4**4)
    ll = ood.context_log_likelihood(blank_and_noise(), table)
    assert ll[0] > -5 and ll[1] < -500  # blank: likely; noise: not
    rgb = ood.fit_context_background(torch.rand(4, 3, 8, 8), levels=3)
    assert rgb.shape == (3, 81)
    assert ood.context_log_likelihood(torch.rand(2, 3, 8, 8), rgb).shape == (2,)


def test_pixel_background_and_typicality():
    means = ood.fit_pixel_background(torch.zeros(5, 1, 4, 4))
    assert ood.pixel_log_likelihood(torch.zeros(1, 1, 4, 4), means).item() > -0.1
    stats = torch.randn(500, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor(
        [1, 10, 100]
    )
    mean, precision = ood.fit_gaussian(stats)
    score = ood.typicality(torch.stack([mean, mean + torch.tensor([0, 0, 300.0])]), mean, precision)
    assert score[0] == pytest.approx(0.0, abs=1e-9) and score[1] < -5  # 3 sd away: ~ -9


def test_kde_prefers_points_near_its_training_statistics():
    stats = torch.randn(400, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([1, 50])
    kde = ood.fit_kde(stats)
    assert kde[2].shape == (400, 2) and 0 < kde[3] < 1
    score = ood.kde_log_density(torch.tensor([[0.0, 0.0], [0.0, 200.0], [5.0, 0.0]]), *kde)
    assert score[0] > score[1] and score[0] > score[2]


def test_threshold_at_rejects_that_share():
    scores = np.arange(1000.0)
    assert (scores < ood.threshold_at(scores, 0.02)).mean() == pytest.approx(0.02, abs=0.002)


def test_typicality_rejects_noise_on_the_shipped_model(mnist_dir):
    """The chosen method (docs/capabilities.md: a kernel density over five statistics) fitted
    on 200 training digits: 50 uniform
    noise images against 50 test digits, AUROC >= 0.99 (1.00 at full size)."""
    torch.manual_seed(0)
    module, _ = artifact.load(SHIPPED_MODEL)
    images, labels = load_mnist("train", mnist_dir)
    (fit, _), _ = split_train_val(images, labels)
    fit = to_unit(fit[:2000])
    digits = to_unit(load_mnist("test", mnist_dir)[0][:50])
    noise = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    table = ood.fit_context_background(fit)

    def statistics(x):
        with torch.no_grad():
            _, reconstruction, kl, ll = module.score(x, 20)[:4]
        background = ood.context_log_likelihood(x, table)
        return torch.stack([ll, reconstruction, kl, background, ood.compressed_bits(x)], 1)

    kde = ood.fit_kde(statistics(fit[:200]))
    inliers = ood.kde_log_density(statistics(digits), *kde)
    outliers = ood.kde_log_density(statistics(noise), *kde)
    assert ood.auroc(inliers, outliers) >= 0.99
