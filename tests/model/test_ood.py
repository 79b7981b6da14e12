"""model/ood.py: the out-of-distribution scores on tiny inputs (the shipped model's floors:
test_ood_floors.py)."""

import numpy as np
import pytest
import torch

from model import ood


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
    assert ood.context_log_likelihood(torch.rand(2, 3, 8, 8), rgb, levels=3).shape == (2,)


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


def test_grey_share_counts_the_values_between_black_and_white():
    x = torch.tensor([0.0, 0.05, 0.5, 0.95, 1.0, 0.3, 0.0, 0.0]).view(1, 1, 2, 4)
    assert ood.grey_share(x).item() == pytest.approx(2 / 8)


def test_a_statistic_that_never_varies_is_left_out_of_the_density():
    """Binary training images have grey_share 0 throughout: that statistic gets a zero row
    and column in the whitening, so an image that differs only there scores the same."""
    generator = torch.Generator().manual_seed(0)
    stats = torch.randn(300, 3, generator=generator, dtype=torch.float64)
    stats[:, 2] = 0.0
    kde = ood.fit_kde(stats)
    assert torch.equal(kde[1][2], torch.zeros(3)) and torch.equal(kde[1][:, 2], torch.zeros(3))
    probe = torch.tensor([[0.1, -0.2, 0.0], [0.1, -0.2, 0.7]], dtype=torch.float64)
    score = ood.kde_log_density(probe, *kde)
    assert score[0] == score[1]
    identity = torch.eye(2, dtype=torch.float64)
    torch.testing.assert_close(torch.cov(kde[2][:, :2].T), identity, atol=1e-5, rtol=0)
