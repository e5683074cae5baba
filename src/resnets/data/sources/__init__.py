"""The named datasets: a registry from name to loader function and default augmentation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from resnets.data.config import DataConfig
from resnets.data.sources.base import ArrayData, FileSplit, FolderData
from resnets.data.sources.cifar import load_cifar_arrays
from resnets.data.sources.digits import load_digits_arrays
from resnets.data.sources.idx import load_idx_arrays
from resnets.data.sources.imagefolder import load_imagefolder
from resnets.data.sources.synthetic import load_synthetic_arrays


def _small_or_large(image_size: int) -> str:
    return "cifar" if image_size <= 64 else "imagenet"


@dataclass(frozen=True)
class Source:
    """How to load one named dataset and which augmentation "auto" means for it."""

    load: Callable[[DataConfig], ArrayData | FolderData]
    auto_augment: Callable[[int], str]  # native image height -> augmentation name
    summary: str


SOURCES: dict[str, Source] = {
    "digits": Source(load_digits_arrays, lambda size: "shift", "scikit-learn digits, 8x8 grey (embedded)"),
    "synthetic": Source(load_synthetic_arrays, lambda size: "none", "random images of any shape"),
    "mnist": Source(load_idx_arrays, lambda size: "shift", "MNIST, official IDX files, 28x28 grey"),
    "fashion-mnist": Source(load_idx_arrays, lambda size: "shift", "Fashion-MNIST, official IDX files, 28x28 grey"),
    "cifar10": Source(load_cifar_arrays, lambda size: "cifar", "CIFAR-10, official python batches, 32x32 RGB"),
    "cifar100": Source(load_cifar_arrays, lambda size: "cifar", "CIFAR-100, official python batches, 32x32 RGB"),
    "imagefolder": Source(load_imagefolder, _small_or_large, "a folder of class sub-folders of images"),
}


def register_source(name: str, source: Source) -> None:
    """Add a named dataset (used by the modules below and by plug-ins)."""
    if name in SOURCES:
        raise ValueError(f"dataset {name!r} is already registered")
    SOURCES[name] = source


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {list_datasets()}") from None


def list_datasets() -> list[str]:
    """The names ``DataConfig.name`` accepts."""
    return sorted(SOURCES)


__all__ = ["ArrayData", "FileSplit", "FolderData", "Source", "SOURCES", "get_source", "list_datasets", "register_source"]
