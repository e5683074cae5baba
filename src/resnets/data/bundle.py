"""The bundle of one dataset: its train / val / test loaders plus what a model needs to know."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import torch
from PIL import Image
from torch import Tensor

from resnets.data.config import DataConfig
from resnets.data.sources import get_source
from resnets.data.transforms import preprocess

RESIDENT_LIMIT_BYTES = 2 * 1024**3  # device_resident="auto": datasets under ~2 GB as uint8


class Loader(Protocol):
    num_samples: int

    def __len__(self) -> int: ...

    def epoch(self, epoch: int, *, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]: ...


@dataclass
class DataBundle:
    """The loaders of one dataset and its facts. ``mean``/``std`` come from its training split."""

    name: str
    train: Loader
    val: Loader | None
    test: Loader | None
    num_classes: int
    in_chans: int
    image_size: int
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str = "none"
    crop_fraction: float = 1.0  # evaluation: resize to image_size / crop_fraction, centre-crop
    device_resident: bool = False
    notes: list[str] = field(default_factory=list)
    source: str = ""  # where the images were read from (a folder), or how they were made ("built in")

    def preprocess(self, image: Image.Image) -> Tensor:
        """One PIL image -> (C, H, W) float32: this dataset's evaluation transform."""
        return preprocess(
            image,
            image_size=self.image_size,
            in_chans=self.in_chans,
            mean=self.mean,
            std=self.std,
            crop_fraction=self.crop_fraction,
        )


def resolve_augment(cfg: DataConfig, *, native_size: int) -> str:
    """``cfg.augment``, with "auto" replaced by the source's default for its image size."""
    if cfg.augment != "auto":
        return cfg.augment
    return get_source(cfg.name).auto_augment(native_size)


def storage_device(mode: str, *, nbytes: int, device: torch.device) -> torch.device:
    """Where a dataset's uint8 tensor lives: on ``device`` when resident, else on the CPU."""
    if mode == "yes" or (mode == "auto" and nbytes <= RESIDENT_LIMIT_BYTES):
        return device
    return torch.device("cpu")
