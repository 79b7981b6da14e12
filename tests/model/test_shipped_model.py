"""The shipped model: loads without project code, keeps the contract, scores what its card says."""

import json
import subprocess
import sys

import pytest
import torch

from model import artifact
from model.evaluate import evaluate, load_test_set
from model.export import REQUIRED_METHODS, SPOT_CHECK, read_card
from tests.conftest import SHIPPED_MODEL


@pytest.fixture(scope="module")
def shipped():
    return artifact.load(SHIPPED_MODEL)[0]


@pytest.fixture(scope="module")
def card():
    return read_card(SHIPPED_MODEL)


def test_loads_with_plain_torch_and_no_project_code(tmp_path):
    script = (
        "import json, torch\n"
        f"extra = {{'model_card.json': ''}}\n"
        f"m = torch.jit.load({str(SHIPPED_MODEL)!r}, _extra_files=extra)\n"
        "mu, sigma = m.encode(torch.rand(2, 1, 28, 28))\n"
        "print(json.dumps([list(mu.shape), json.loads(extra['model_card.json'])['latent_dim']]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    shape, latent_dim = json.loads(out.stdout)
    assert shape == [2, latent_dim]


def test_every_method_with_the_right_shapes(shipped, card):
    d = card["latent_dim"]
    assert all(hasattr(shipped, name) for name in REQUIRED_METHODS)
    x = torch.rand(3, 1, 28, 28)
    mu, sigma = shipped.encode(x)
    assert mu.shape == sigma.shape == (3, d) and (sigma > 0).all()
    assert mu.dtype == torch.float32
    images = shipped.decode(torch.randn(5, d))
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    logits = shipped.decode_logits(torch.zeros(1, d))
    torch.testing.assert_close(torch.sigmoid(logits), shipped.decode(torch.zeros(1, d)))
    assert shipped.reconstruct(x).shape == (3, 1, 28, 28)
    assert shipped.sample(4, 0.5).shape == (4, 1, 28, 28)


def test_card_metadata(card):
    assert card["image_shape"] == [1, 28, 28] and card["latent_dim"] > 0
    for key in ("architecture", "training", "dataset", "metrics", "version", "created"):
        assert key in card
    assert len(card["dataset"]["sha256"]) == 4
    assert card["metrics"]["iwae_k"] == 1000 and card["metrics"]["n_images"] == 10000
    assert card["metrics"]["test_nll_iwae"] < card["metrics"]["test_elbo"] * -1


def test_quick_evaluation_agrees_with_the_card(shipped, card, mnist_dir):
    """Recompute the card's spot check (first 300 test images, K=200) within 0.5 nats, and
    check it is in line with the full-test-set figure (within 6 nats: a 300-image subset)."""
    spot = card["metrics"]["spot_check"]
    assert {k: spot[k] for k in SPOT_CHECK} == SPOT_CHECK
    torch.manual_seed(1)  # a different seed than the card's: only Monte-Carlo noise differs
    result = evaluate(
        shipped, load_test_set(mnist_dir, spot["n_images"]), spot["k"], progress=False
    )
    assert result["test_nll_iwae"] == pytest.approx(spot["nll"], abs=0.5)
    assert result["test_nll_iwae"] == pytest.approx(card["metrics"]["test_nll_iwae"], abs=6.0)


def test_shipped_capabilities_match_the_card(shipped, card, mnist_dir):
    """The heads fitted at export: classify as accurately as the card says (first 1,000
    test digits, grey levels), score test digits around the middle of the table."""
    from model.fit_heads import Digits

    cap = card["capabilities"]
    assert set(cap["provides"]) == {"score", "classify", "conditional_sampling"}
    assert cap["classifier_test_accuracy"] >= 0.98
    test = Digits.load("test", mnist_dir)
    x, labels = test.images[:1000], test.labels[:1000]
    with torch.no_grad():
        probabilities, mu = shipped.classify(x)
        accuracy = (probabilities.argmax(-1) == labels).float().mean().item()
        assert accuracy == pytest.approx(cap["classifier_test_accuracy"], abs=0.01)
        torch.manual_seed(0)
        *_, percentile, _, ood_percentile, typical = shipped.score(x[:100], 100)
    assert 30 < percentile.median().item() < 70 and typical.float().mean() > 0.9
    assert 30 < ood_percentile.median().item() < 70  # calibrated on held-out digits
    assert torch.equal(shipped.score_table.sort().values, shipped.score_table)
    assert shipped.typical_threshold.item() == pytest.approx(cap["typical_threshold"])
