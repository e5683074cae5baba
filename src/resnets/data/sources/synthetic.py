"""Synthetic images of any shape, deterministic from the seed (for benchmarks and smoke tests).

Each class has a random prototype; a sample is half prototype, half noise, so a network can
learn it (a training run on synthetic data shows falling loss, not only speed).
"""

from __future__ import annotations

import numpy as np

from resnets.data.config import DataConfig
from resnets.data.sources.base import ArrayData
from resnets.data.splits import mix_seed


def _make(n: int, shape: tuple[int, int, int], prototypes: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(prototypes), size=n).astype(np.int64)
    noise = rng.integers(0, 256, size=(n, *shape), dtype=np.uint16)
    images = ((prototypes[labels].astype(np.uint16) + noise) // 2).astype(np.uint8)  # (N, C, H, W)
    return images, labels


def load_synthetic_arrays(cfg: DataConfig) -> ArrayData:
    """``synthetic_size`` training images and ``max(1, synthetic_size // 5)`` test images."""
    shape = cfg.synthetic_shape
    rng = np.random.default_rng(mix_seed(cfg.seed, 0x5147))
    prototypes = rng.integers(0, 256, size=(cfg.synthetic_classes, *shape), dtype=np.uint8)
    train_x, train_y = _make(cfg.synthetic_size, shape, prototypes, mix_seed(cfg.seed, 1))
    test_x, test_y = _make(max(1, cfg.synthetic_size // 5), shape, prototypes, mix_seed(cfg.seed, 2))
    return ArrayData(
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        classes=[f"class_{i}" for i in range(cfg.synthetic_classes)],
    )
