"""The data configuration: one typed dataclass, validated on construction."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from resnets.data.augmentations import AUGMENTATIONS

AUGMENTS: tuple[str, ...] = ("auto", *AUGMENTATIONS)
RESIDENCY: tuple[str, ...] = ("auto", "yes", "no")


@dataclass
class DataConfig:
    """Which dataset to load and how to feed it.

    ``name`` is one of :func:`resnets.data.list_datasets`. ``val_fraction`` is held out of
    the TRAINING data (CIFAR: 0.1 gives the paper's 45k/5k split); the test split is never
    used to choose anything.
    """

    name: str = "digits"
    root: str | None = None
    batch_size: int = 128
    eval_batch_size: int | None = None
    val_fraction: float = 0.1
    augment: str = "auto"
    image_size: int | None = None
    workers: int = 0
    seed: int = 0
    download: bool = False
    device_resident: str = "auto"
    synthetic_shape: tuple[int, int, int] = (3, 32, 32)
    synthetic_classes: int = 10
    synthetic_size: int = 512
    decode_cache: bool = True  # image folders: save decoded small images in the user cache dir

    def __post_init__(self) -> None:
        self.synthetic_shape = tuple(int(v) for v in self.synthetic_shape)  # type: ignore[assignment]
        _check(self.augment in AUGMENTS, f"augment={self.augment!r} is not one of {AUGMENTS}")
        _check(
            self.device_resident in RESIDENCY,
            f"device_resident={self.device_resident!r} is not one of {RESIDENCY}",
        )
        _check(self.batch_size >= 1, f"batch_size={self.batch_size} must be >= 1")
        _check(
            self.eval_batch_size is None or self.eval_batch_size >= 1,
            f"eval_batch_size={self.eval_batch_size} must be >= 1 (or null for batch_size)",
        )
        _check(0.0 <= self.val_fraction < 1.0, f"val_fraction={self.val_fraction} must be in [0, 1)")
        _check(self.image_size is None or self.image_size >= 1, "image_size must be >= 1 or null")
        _check(self.workers >= 0, f"workers={self.workers} must be >= 0")
        _check(
            len(self.synthetic_shape) == 3 and min(self.synthetic_shape) >= 1,
            f"synthetic_shape={self.synthetic_shape} must be three positive ints (C, H, W)",
        )
        _check(self.synthetic_classes >= 1, "synthetic_classes must be >= 1")
        _check(self.synthetic_size >= 1, "synthetic_size must be >= 1")

    @property
    def eval_batch(self) -> int:
        return self.eval_batch_size or self.batch_size

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DataConfig:
        """Build from a mapping (e.g. YAML); an unknown key is an error that names the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown data config key(s) {unknown}; known keys: {sorted(known)}"
            )
        return cls(**dict(values))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(f"DataConfig: {message}")
