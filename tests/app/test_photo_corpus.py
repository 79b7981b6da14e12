"""A small run of the photo corpus (scripts/photos/recovery.py) with the shipped model, with
floors, so preprocessing can never silently regress. The full figures are in
docs/preprocessing.md (300 digits per condition); here 24 per condition, where one digit is
~4 points and a condition's figure wanders by +-10 points between samples, so the floors sit
well below the figures: they catch a broken step (a wrong polarity recovers ~10 %), not a
point or two."""

import numpy as np
import pytest

from model.data import load_mnist
from scripts.photos.corpus import CONDITIONS, HAND_MADE
from scripts.photos.recovery import CLEAN, Reader, recovery
from tests.conftest import SHIPPED_MODEL

# 11 s of the shipped model on 336 photos (22 s on a loaded runner): the full run's, not the
# fast lane's; tests/app/test_digits.py keeps the preprocessing steps in the fast lane
pytestmark = pytest.mark.slow

PER_CONDITION = 24
FLOOR = 0.6  # every condition
MEAN_FLOOR = 0.82  # all photo conditions together (336 photos)
BLANK_FLOOR = 0.8  # blank sheets refused with no_digit, all conditions together


@pytest.fixture(scope="module")
def figures(mnist_dir) -> dict[str, dict]:
    images, labels = load_mnist("test", mnist_dir)
    pick = np.random.default_rng(1).permutation(len(images))[:PER_CONDITION]
    reader = Reader(SHIPPED_MODEL, 60_000, mnist_dir)
    conditions = [*CONDITIONS, *HAND_MADE]
    return recovery(reader, images[pick], labels[pick], conditions, seed=1, blanks=4)[0]


def test_clean_28x28_digits_are_recovered(figures):
    assert figures[CLEAN]["recovered"] >= 0.9


@pytest.mark.parametrize("condition", [*CONDITIONS, *HAND_MADE])
def test_every_condition_has_its_floor(figures, condition):
    assert figures[condition]["recovered"] >= FLOOR, figures[condition]


def test_photos_together_are_recovered_nearly_as_clean_digits(figures):
    photos = [r["recovered"] for name, r in figures.items() if name != CLEAN]
    assert np.mean(photos) >= MEAN_FLOOR, figures


def test_blank_sheets_are_refused(figures):
    assert figures[CLEAN]["blank_refused"] == 1.0
    blanks = [r["blank_refused"] for name, r in figures.items() if name != CLEAN]
    assert np.mean(blanks) >= BLANK_FLOOR, figures
