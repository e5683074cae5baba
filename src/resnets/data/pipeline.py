"""Batch pipelines: uint8 batch on the device -> augmented, normalised float32 batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from resnets.data.augment import resize_center_crop
from resnets.data.augmentations import get_augmentation


class BatchPipeline:
    """Augments (training) and normalises whole batches on their device.

    ``out_size``: the square output side, or None to keep the stored size (H, W).
    """

    def __init__(
        self,
        *,
        augment: str,
        out_size: int | None,
        mean: Sequence[float],
        std: Sequence[float],
        max_value: float,
        device: torch.device,
    ) -> None:
        self.augmentation = get_augmentation(augment)
        self.augment = augment
        self.out_size = out_size
        self.crop_fraction = self.augmentation.eval_crop_fraction
        c = len(mean)
        m = torch.tensor(mean, dtype=torch.float32)
        s = torch.tensor(std, dtype=torch.float32)
        # x_norm = (x / max_value - mean) / std = x * scale + shift
        self._scale = (1.0 / (max_value * s)).view(1, c, 1, 1).to(device)
        self._shift = (-m / s).view(1, c, 1, 1).to(device)

    def normalise(self, x: Tensor) -> Tensor:
        """(B, C, H, W) raw values -> float32 normalised."""
        return x.float() * self._scale + self._shift

    def train(self, x: Tensor, *, seed: int) -> Tensor:
        """(B, C, H, W) uint8 -> (B, C, S, S) float32, augmented with a generator seeded ``seed``."""
        gen = torch.Generator().manual_seed(seed)
        size = self.out_size or min(x.shape[-2:])
        return self.normalise(self.augmentation.batch(x, gen, size))

    def eval(self, x: Tensor) -> Tensor:
        """(B, C, H, W) uint8 -> (B, C, S, S) float32: the deterministic evaluation transform."""
        size = self.out_size
        if size is not None and (self.crop_fraction != 1.0 or tuple(x.shape[-2:]) != (size, size)):
            x = resize_center_crop(x, size=size, crop_fraction=self.crop_fraction)
        return self.normalise(x)
