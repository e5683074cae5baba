"""Array helpers for in-memory datasets: batched resize of uint8 images."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize_uint8(images: np.ndarray, *, size: int, chunk: int = 2048) -> np.ndarray:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8, bilinear with antialiasing.

    Non-square images are resized on the shorter side and centre-cropped.
    """
    n, c, h, w = images.shape
    if (h, w) == (size, size):
        return images
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (nh - size) // 2, (nw - size) // 2
    out = np.empty((n, c, size, size), dtype=np.uint8)
    for s in range(0, n, chunk):
        x = torch.from_numpy(images[s : s + chunk]).float()
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        x = x[..., top : top + size, left : left + size]
        out[s : s + chunk] = x.round().clamp(0, 255).to(torch.uint8).numpy()
    return out
