"""What a source hands to the loader builder: arrays in memory, or lists of image files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class ArrayData:
    """A dataset decoded into memory. Images (N, C, H, W) uint8; labels (N,) int64.

    Pixel values are ``x / max_value`` in [0, 1] (255 for 8-bit images, 16 for digits).
    ``val_*`` is set only when the source ships its own validation split.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    classes: list[str]
    max_value: float = 255.0
    test_x: np.ndarray | None = None
    test_y: np.ndarray | None = None
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    # split -> the files its labels came from, in order, with their sample counts (for messages)
    origin: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)


@dataclass
class FileSplit:
    """Image files of one split and their labels (indices into the class list).

    ``stamps`` holds (size in bytes, mtime in ns) per file, taken at scan time (for cache keys).
    """

    paths: list[str]
    labels: np.ndarray  # (N,) int64
    stamps: list[tuple[int, int]] | None = None


@dataclass
class FolderData:
    """An image folder: file lists per split, decoded later (all at once, or per batch)."""

    train: FileSplit
    classes: list[str]
    root: Path
    val: FileSplit | None = None
    test: FileSplit | None = None


def _where(origin: list[tuple[str, int]], index: int) -> str:
    """The file that holds sample ``index`` of a split made of ``origin``'s files."""
    for name, count in origin:
        if index < count:
            return f" in {name} (sample {index})"
        index -= count
    return ""


def check_labels(data: ArrayData, *, name: str) -> None:
    """Every label an integer in [0, number of classes): else a ValueError naming the file
    (when the source says where its labels came from), the label and the class count."""
    k = len(data.classes)
    for split, y in (("train", data.train_y), ("val", data.val_y), ("test", data.test_y)):
        if y is None or len(y) == 0:
            continue
        bad = np.flatnonzero((y < 0) | (y >= k))
        if len(bad):
            i = int(bad[0])
            raise ValueError(
                f"dataset {name!r}: the {split} labels hold {int(y[i])}{_where(data.origin.get(split, []), i)}, "
                f"outside 0..{k - 1} for its {k} classes ({len(bad)} such label(s)); the file is damaged or of "
                "another dataset: replace it (download it again)"
            )
