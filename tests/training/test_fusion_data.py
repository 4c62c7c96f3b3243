"""The fusion's held-out splits: disjoint, stratified, seeded; MELD read into the shared labels; pools of two sources
never share a source item."""

from __future__ import annotations

import numpy as np

from perception import LABELS
from tests.conftest import SHARED
from training.fusion_data import Pool, concat_pools, read_meld, split_items


def test_split_items_is_disjoint_stratified_and_seeded():
    y = np.repeat(np.arange(7), [500, 40, 60, 300, 200, 100, 5])
    parts = split_items(y, (0.6, 0.2, 0.2), seed=7)
    joined = np.concatenate(parts)
    assert len(joined) == len(y) and len(np.unique(joined)) == len(y)  # every item once
    for k, n in enumerate([500, 40, 60, 300, 200, 100]):
        counts = [int((y[p] == k).sum()) for p in parts]
        assert abs(counts[0] - 0.6 * n) <= 1 and abs(counts[1] - 0.2 * n) <= 1, (k, counts)
    assert all(np.array_equal(a, b) for a, b in zip(parts, split_items(y, (0.6, 0.2, 0.2), seed=7)))
    assert not np.array_equal(parts[1], split_items(y, (0.6, 0.2, 0.2), seed=8)[1])


def test_meld_reads_into_the_shared_labels():
    texts, y = read_meld(SHARED / "data" / "meld" / "dev_sent_emo.csv")
    assert len(texts) == len(y) == 1109 and all(t.strip() for t in texts)
    counts = np.bincount(y, minlength=len(LABELS))
    assert counts[LABELS.index("neutral")] == 470 and counts[LABELS.index("disgust")] == 22


def test_concatenated_pools_keep_sources_apart():
    def pool(n: int) -> Pool:
        g = np.r_[np.arange(n), np.arange(n)]
        return Pool(
            np.zeros((2 * n, 3)), np.zeros((2 * n, 4)), np.zeros(2 * n, np.int64), np.r_[np.zeros(n), np.ones(n)] > 0, g
        )

    both = concat_pools([pool(3), pool(2)])
    assert len(both.y) == 10
    assert set(both.group[:6]) == {0, 1, 2} and set(both.group[6:]) == {3, 4}
