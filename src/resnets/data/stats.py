"""Per-channel normalisation statistics of a training split."""

from __future__ import annotations

import torch


def channel_stats(
    images: torch.Tensor, *, max_value: float, chunk: int = 4096
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and (population) std per channel of ``images / max_value``.

    ``images`` is (N, C, H, W) uint8 (or any dtype); computed in float64 over chunks.
    """
    n, c = images.shape[0], images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for start in range(0, n, chunk):
        block = images[start : start + chunk].to(torch.float64) / max_value  # (n, C, H, W)
        total += block.sum(dim=(0, 2, 3)).cpu()
        total_sq += (block * block).sum(dim=(0, 2, 3)).cpu()
    count = max(n * images.shape[2] * images.shape[3], 1)
    mean = total / count
    var = (total_sq / count - mean * mean).clamp_min(0.0)
    std = var.sqrt().clamp_min(1e-6)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)
