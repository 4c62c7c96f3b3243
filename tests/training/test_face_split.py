"""The face trainer picks its epoch on a split carved from FER-2013 train, never on the public test split it reports."""

from __future__ import annotations

import numpy as np

from tests.conftest import SHARED
from training.face import carve_validation


def test_carved_validation_is_stratified_seeded_and_free_of_training_duplicates():
    with np.load(SHARED / "data" / "fer2013" / "fer2013_train.npz", allow_pickle=False) as z:
        x, y = z["images"], z["labels"]
    keep, held = carve_validation(x, y, 0.1, seed=7)
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == len(y)
    assert 0.09 * len(y) < len(held) < 0.1 * len(y) + 7  # a few duplicates went back to train
    for k in range(7):  # about a tenth of every class, less what duplicates took back (surprise: 231 of 317)
        assert 0.07 < (y[held] == k).sum() / (y == k).sum() <= 0.1 + 1 / (y == k).sum(), k
    train_images = {x[i].tobytes() for i in keep}
    assert not any(x[i].tobytes() in train_images for i in held)
    again, _ = carve_validation(x, y, 0.1, seed=7)
    other, _ = carve_validation(x, y, 0.1, seed=8)
    assert np.array_equal(keep, again) and not np.array_equal(keep, other)
