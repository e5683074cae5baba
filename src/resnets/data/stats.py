"""Per-channel normalisation statistics of a training split, computed in one place for the
in-memory datasets (one uint8 tensor) and the streamed folders (batches of decoded images)."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def channel_stats_of(
    batches: Iterable[torch.Tensor], *, channels: int, max_value: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and (population) std per channel of ``x / max_value`` over every (n, C, H, W) batch.

    Sums accumulate in float64 (integer images are summed from float32, exact for uint8).
    """
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    count = 0
    for batch in batches:
        block = batch.double() if batch.is_floating_point() else batch.float()  # (n, C, H, W) raw values
        total += block.sum(dim=(0, 2, 3), dtype=torch.float64).cpu()
        total_sq += (block * block).sum(dim=(0, 2, 3), dtype=torch.float64).cpu()
        count += block.shape[0] * block.shape[2] * block.shape[3]
    n = max(count, 1) * max_value
    mean = total / n
    var = (total_sq / max_value / n - mean * mean).clamp_min(0.0)
    std = var.sqrt().clamp_min(1e-6)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def channel_stats(
    images: torch.Tensor, *, max_value: float, chunk: int = 4096
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """:func:`channel_stats_of` a whole (N, C, H, W) split, in chunks of ``chunk`` images."""
    return channel_stats_of((images[i : i + chunk] for i in range(0, images.shape[0], chunk)),
                            channels=images.shape[1], max_value=max_value)


__all__ = ["channel_stats", "channel_stats_of"]
