"""The tensor loader: a whole split as one uint8 tensor, batched by index arithmetic.

Order and augmentation are pure functions of (seed, epoch, batch index, rank), so
``epoch(e, start=k)`` yields exactly the tail of ``epoch(e)`` without computing the first k.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from resnets.data.pipeline import BatchPipeline
from resnets.data.splits import mix_seed, rank_shard

_PERM_STREAM = 0x9E1
_AUG_STREAM = 0xA06


def epoch_order(num: int, *, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The order of a split's indices in ``epoch``: a seeded permutation, or 0..num-1."""
    if not shuffle:
        return np.arange(num)
    return np.random.default_rng(mix_seed(seed, epoch, _PERM_STREAM)).permutation(num)


class TensorLoader:
    """Batches of one split held as a uint8 tensor (on the device, or on the CPU and copied).

    Training (``train=True``): shuffled each epoch, augmented, last partial batch dropped.
    Evaluation: fixed order, the evaluation transform, last partial batch kept.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        *,
        batch_size: int,
        train: bool,
        pipeline: BatchPipeline,
        device: torch.device,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images = images  # (N, C, H, W) uint8
        self.labels = labels  # (N,) int64, same device as images
        self.batch_size = batch_size
        self.train = train
        self.pipeline = pipeline
        self.device = device
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self._total = int(images.shape[0])
        self.num_samples = len(self._shard(np.arange(self._total)))
        if train and len(self) == 0:
            raise ValueError(
                f"the training split has {self.num_samples} samples on this rank, fewer than "
                f"batch_size={batch_size}; lower batch_size or use more data"
            )

    def _shard(self, order: np.ndarray) -> np.ndarray:
        return rank_shard(order, rank=self.rank, world_size=self.world_size, even=self.train)

    def __len__(self) -> int:
        if self.train:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def indices(self, epoch: int) -> np.ndarray:
        """This rank's sample indices for ``epoch``, in the order they are served."""
        order = epoch_order(self._total, seed=self.seed, epoch=epoch, shuffle=self.train)
        return self._shard(order)

    def epoch(self, epoch: int, *, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield (x (B, C, S, S) float32 normalised, y (B,) int64), both on the device."""
        if start < 0:
            raise ValueError(f"start={start} must be >= 0")
        order = torch.from_numpy(self.indices(epoch)).to(self.images.device)
        b = self.batch_size
        for k in range(start, len(self)):
            idx = order[k * b : (k + 1) * b]
            x = self.images.index_select(0, idx).to(self.device, non_blocking=True)  # (B, C, H, W)
            y = self.labels.index_select(0, idx).to(self.device, non_blocking=True)  # (B,)
            if self.train:
                seed = mix_seed(self.seed, epoch, k, self.rank, _AUG_STREAM)
                yield self.pipeline.train(x, seed=seed), y
            else:
                yield self.pipeline.eval(x), y

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.epoch(0)
