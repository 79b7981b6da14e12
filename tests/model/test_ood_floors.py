"""The shipped MNIST model's out-of-distribution score (the `typical` of POST /score) meets
issue 26's floors on a small version of model/evaluate_ood.py's sets, taking the upload
path (PNG bytes through the service's preprocessor), with the file's own fitted score and
threshold: AUROC >= 0.95 for letters (tuning and held-out fonts) and strokes, >= 0.90 for
rotated digits, 1.00 for noise and shuffled digits, and at most 2 % of test digits
refused. Seeded throughout, so the figures are the same on every run."""

import pytest
import torch

from model import artifact, ood
from model.data import load_mnist, to_unit
from model.evaluate_ood import ood_sets, upload
from model.heads import SCORE_OUTPUTS
from tests.conftest import SHIPPED_MODEL

N_TEST, N_PER_SET, K = 500, 100, 100
FLOORS = {
    "letters (tuning fonts)": 0.95,
    "letters (held-out fonts)": 0.95,
    "random strokes": 0.95,
    "digits rotated 90 deg": 0.90,
    "digits rotated 180 deg": 0.90,
    "uniform noise": 1.0,
    "shuffled digits": 1.0,
}


def served(module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    with torch.no_grad():
        outputs = [module.score(b, K) for b in x.split(100)]
    return {
        name: torch.cat([o[SCORE_OUTPUTS.index(name)] for o in outputs])
        for name in ("ood_score", "typical")
    }


@pytest.fixture(scope="module")
def scored(mnist_dir) -> dict[str, dict[str, torch.Tensor]]:
    module, _ = artifact.load(SHIPPED_MODEL)
    test = to_unit(load_mnist("test", mnist_dir)[0])
    sets = {"MNIST test": test[:N_TEST]}
    sets |= {name: x for name, x in ood_sets(test, N_PER_SET, seed=0).items() if name in FLOORS}
    return {name: served(module, upload(x)[0]) for name, x in sets.items()}


@pytest.mark.parametrize("name", FLOORS)
def test_auroc_floor(scored, name):
    inliers, outliers = scored["MNIST test"]["ood_score"], scored[name]["ood_score"]
    assert len(outliers) >= 0.9 * N_PER_SET  # the preprocessor refuses few of these
    assert ood.auroc(inliers, outliers) >= FLOORS[name]


def test_few_test_digits_are_refused(scored):
    assert (~scored["MNIST test"]["typical"]).float().mean().item() <= 0.02
