"""The augmentations, one table: a name -> what it does to a batch on the device (tensor
loaders), to one image (streaming folder loaders), and which centre crop evaluation takes.

Adding an augmentation is one entry here; ``DataConfig.augment`` accepts "auto" and these names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from resnets.data.augment import (
    IMAGENET_CROP_FRACTION,
    cifar_pad,
    random_crop,
    random_flip,
    random_resized_crop,
    shift_pad,
)

if TYPE_CHECKING:
    from torchvision.transforms import v2

BatchFn = Callable[[Tensor, torch.Generator, int], Tensor]  # (uint8 batch, generator, output side) -> batch
ImageOps = Callable[[int], "list[v2.Transform]"]  # output side -> random ops on one image (C, S, S)


@dataclass(frozen=True)
class Augmentation:
    batch: BatchFn
    image: ImageOps  # after the image was resized and centre-cropped to the side (unless ``crops``)
    eval_crop_fraction: float = 1.0  # evaluation: resize to side / fraction, centre-crop side
    crops: bool = False  # ``image`` crops the full frame itself (no resize-crop before it)


def _none_batch(x: Tensor, gen: torch.Generator, size: int) -> Tensor:
    return x


def _cifar_batch(x: Tensor, gen: torch.Generator, size: int) -> Tensor:
    return random_flip(random_crop(x, pad=cifar_pad(x.shape[-2]), gen=gen), gen=gen)


def _shift_batch(x: Tensor, gen: torch.Generator, size: int) -> Tensor:
    return random_crop(x, pad=shift_pad(x.shape[-2]), gen=gen)


def _imagenet_batch(x: Tensor, gen: torch.Generator, size: int) -> Tensor:
    return random_resized_crop(x, size=size, gen=gen)


def _none_image(size: int) -> list[v2.Transform]:
    return []


def _cifar_image(size: int) -> list[v2.Transform]:
    from torchvision.transforms import v2

    return [v2.RandomCrop(size, padding=cifar_pad(size)), v2.RandomHorizontalFlip()]


def _shift_image(size: int) -> list[v2.Transform]:
    from torchvision.transforms import v2

    return [v2.RandomCrop(size, padding=shift_pad(size))]


def _imagenet_image(size: int) -> list[v2.Transform]:
    from torchvision.transforms import v2

    return [v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]


AUGMENTATIONS: dict[str, Augmentation] = {
    "none": Augmentation(batch=_none_batch, image=_none_image),
    "cifar": Augmentation(batch=_cifar_batch, image=_cifar_image),
    "imagenet": Augmentation(batch=_imagenet_batch, image=_imagenet_image, eval_crop_fraction=IMAGENET_CROP_FRACTION,
                             crops=True),
    "shift": Augmentation(batch=_shift_batch, image=_shift_image),
}


def get_augmentation(name: str) -> Augmentation:
    if name not in AUGMENTATIONS:
        raise ValueError(f"augment={name!r} is not one of {sorted(AUGMENTATIONS)}")
    return AUGMENTATIONS[name]


__all__ = ["AUGMENTATIONS", "Augmentation", "get_augmentation"]
