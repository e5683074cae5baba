"""The evaluation transform for single images (prediction)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from resnets.data.images import resize_center_crop_pil, to_chw_uint8, to_mode


def preprocess(
    image: Image.Image,
    *,
    image_size: int,
    in_chans: int,
    mean: Sequence[float],
    std: Sequence[float],
    crop_fraction: float = 1.0,
) -> torch.Tensor:
    """One PIL image -> (C, H, W) float32, normalised: the loaders' evaluation transform.

    Resize the shorter side to ``image_size / crop_fraction``, centre-crop ``image_size``,
    scale to [0, 1], subtract ``mean`` and divide by ``std`` per channel. Pass the bundle's
    ``crop_fraction`` (0.875 for ImageNet-style training, else 1.0) to match its evaluation.
    """
    if len(mean) != in_chans or len(std) != in_chans:
        raise ValueError(f"mean/std need {in_chans} values each, got {len(mean)} and {len(std)}")
    image = resize_center_crop_pil(to_mode(image, in_chans=in_chans), size=image_size, crop_fraction=crop_fraction)
    x = torch.from_numpy(to_chw_uint8(image)).float() / 255.0  # (C, H, W)
    m = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (x - m) / s
