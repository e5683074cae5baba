"""scikit-learn's digits: 1,797 images, 8x8, one channel, values 0..16; present after install."""

from __future__ import annotations

import numpy as np

from resnets.data.config import DataConfig
from resnets.data.sources.base import ArrayData
from resnets.data.splits import stratified_split

TEST_FRACTION = 0.2
TEST_SEED = 20151210  # fixed, independent of cfg.seed: the test split never moves


def load_digits_arrays(cfg: DataConfig) -> ArrayData:
    """All of digits with a fixed, stratified 20% test split (validation comes later from the rest)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None]  # (1797, 1, 8, 8), values 0..16
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = stratified_split(labels, fraction=TEST_FRACTION, seed=TEST_SEED)
    return ArrayData(
        train_x=images[train_idx],
        train_y=labels[train_idx],
        test_x=images[test_idx],
        test_y=labels[test_idx],
        classes=[str(d) for d in range(10)],
        max_value=16.0,
    )
