"""Per-channel normalisation statistics of a training split."""

from __future__ import annotations

import torch


def channel_stats(
    images: torch.Tensor, *, max_value: float, chunk: int = 4096
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and (population) std per channel of ``images / max_value``.

    ``images`` is (N, C, H, W) uint8 (or any dtype); sums accumulate in float64 over chunks.
    """
    n, c = images.shape[0], images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for start in range(0, n, chunk):
        block = images[start : start + chunk].float()  # (n, C, H, W) raw values; exact in float32
        total += block.sum(dim=(0, 2, 3), dtype=torch.float64).cpu()
        total_sq += (block * block).sum(dim=(0, 2, 3), dtype=torch.float64).cpu()
    count = max(n * images.shape[2] * images.shape[3], 1) * max_value
    total_sq /= max_value
    mean = total / count
    var = (total_sq / count - mean * mean).clamp_min(0.0)
    std = var.sqrt().clamp_min(1e-6)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)
