"""Whole-batch augmentation on the device: no per-sample Python in the hot loop.

Random parameters come from a CPU ``torch.Generator`` seeded per batch, so a batch's
augmentation is the same on every device and a pure function of its seed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from resnets.data.images import resize_crop_geometry

IMAGENET_CROP_FRACTION = 0.875  # evaluation: resize to size / 0.875, centre-crop size (256 -> 224)


def random_crop(x: Tensor, *, pad: int, gen: torch.Generator) -> Tensor:
    """Zero-pad by ``pad`` and take a random crop of the original size, per sample.

    ``x`` (B, C, H, W) any dtype -> (B, C, H, W); every output pixel is an input pixel or 0.
    """
    b, c, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=gen).to(x.device)  # (B, 2): dy, dx
    padded = F.pad(x, (pad, pad, pad, pad))  # (B, C, H + 2p, W + 2p)
    hp, wp = h + 2 * pad, w + 2 * pad
    rows = offsets[:, 0, None, None] + torch.arange(h, device=x.device)[:, None]  # (B, H, 1)
    cols = offsets[:, 1, None, None] + torch.arange(w, device=x.device)  # (B, 1, W)
    flat = (rows * wp + cols).view(b, 1, h * w).expand(b, c, h * w)  # (B, C, H*W)
    return padded.reshape(b, c, hp * wp).gather(2, flat).view(b, c, h, w)


def flip_mask(batch: int, *, gen: torch.Generator) -> Tensor:
    """(B,) bool: which samples to mirror left-right (probability 1/2)."""
    return torch.rand(batch, generator=gen) < 0.5


def random_flip(x: Tensor, *, gen: torch.Generator) -> Tensor:
    """Mirror each sample left-right with probability 1/2: (B, C, H, W) -> (B, C, H, W)."""
    mask = flip_mask(x.shape[0], gen=gen).to(x.device)
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def random_resized_crop(
    x: Tensor,
    *,
    size: int,
    gen: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
) -> Tensor:
    """ImageNet-style crop of a random area and aspect ratio, resized to ``size``, plus flip.

    One ``grid_sample`` for the whole batch. Departs from torchvision in one detail: a crop
    that does not fit is clamped to the image instead of retried. (B, C, H, W) -> float
    (B, C, size, size).
    """
    b, _, h, w = x.shape
    area = torch.empty(b).uniform_(scale[0], scale[1], generator=gen)
    log_r = torch.empty(b).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    r = log_r.exp()
    cw = (area * r).sqrt().clamp(max=1.0)  # crop width as a fraction of W
    ch = (area / r).sqrt().clamp(max=1.0)  # crop height as a fraction of H
    cx = (torch.rand(b, generator=gen) * 2 - 1) * (1 - cw)  # centre in [-1, 1] coords
    cy = (torch.rand(b, generator=gen) * 2 - 1) * (1 - ch)
    sign = torch.where(flip_mask(b, gen=gen), -1.0, 1.0) if flip else torch.ones(b)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = cw * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = ch
    theta[:, 1, 2] = cy
    theta = theta.to(x.device)
    grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


def resize_center_crop(x: Tensor, *, size: int, crop_fraction: float) -> Tensor:
    """Evaluation transform of a batch: :func:`resnets.data.images.resize_crop_geometry`
    (bilinear, antialiased). (B, C, H, W) -> float (B, C, size, size); identity (as float) when
    nothing changes."""
    h, w = x.shape[-2:]
    nh, nw, top, left = resize_crop_geometry(h, w, size=size, crop_fraction=crop_fraction)
    x = x.float()
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    return x[..., top : top + size, left : left + size]


def shift_pad(height: int) -> int:
    """Pixels of random shift for digit-like images: 1 for 8x8, 2 for 28x28."""
    return max(1, round(height / 14))


def cifar_pad(height: int) -> int:
    """The paper's 4-pixel padding at 32x32, scaled with the image size."""
    return max(1, round(4 * height / 32))
