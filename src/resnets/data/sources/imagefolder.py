"""An image folder: ``root/<class>/*.jpg|png|...`` or ``root/{train,val,test}/<class>/...``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from resnets.data.config import DataConfig
from resnets.data.errors import DatasetNotFoundError
from resnets.data.sources.base import FileSplit, FolderData

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
VAL_NAMES = ("val", "valid", "validation")
_LAYOUT_HINT = (
    "point `root` at a folder of class sub-folders (root/<class>/*.jpg), or at a folder with "
    "train/ (and optionally val/ and test/) sub-folders, each holding class sub-folders"
)


def _class_dirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _walk(folder: str, out: list[tuple[str, int, int]], empty: list[str]) -> None:
    """Image files under ``folder`` (recursively, sorted by name) as (path, size, mtime_ns)."""
    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    for entry in entries:
        if entry.is_dir():
            _walk(entry.path, out, empty)
        elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
            st = entry.stat()
            if st.st_size == 0:
                empty.append(entry.path)
            else:
                out.append((entry.path, st.st_size, st.st_mtime_ns))


def _scan_split(folder: Path, classes: list[str], empty: list[str]) -> FileSplit:
    """Every image file under ``folder/<class>/`` (recursively), sorted; zero-byte files go to ``empty``."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(_class_dirs(folder)) - set(index))
    if unknown:
        raise ValueError(f"{folder}: class folder(s) {unknown} are not among the training classes {classes}")
    paths: list[str] = []
    labels: list[int] = []
    stamps: list[tuple[int, int]] = []
    for name in _class_dirs(folder):
        files: list[tuple[str, int, int]] = []
        _walk(os.path.join(folder, name), files, empty)
        paths.extend(f[0] for f in files)
        stamps.extend((f[1], f[2]) for f in files)
        labels.extend([index[name]] * len(files))
    return FileSplit(paths=paths, labels=np.asarray(labels, dtype=np.int64), stamps=stamps)


def scan_folder(root: Path) -> FolderData:
    """List the splits, classes and image files of an image folder; warn once about problems."""
    if not root.is_dir():
        raise DatasetNotFoundError("imagefolder", [root], _LAYOUT_HINT)
    split_dirs = {"train": root / "train"} if (root / "train").is_dir() else {"train": root}
    if "train" in split_dirs and split_dirs["train"] != root:
        val = next((root / n for n in VAL_NAMES if (root / n).is_dir()), None)
        if val is not None:
            split_dirs["val"] = val
        if (root / "test").is_dir():
            split_dirs["test"] = root / "test"
    classes = _class_dirs(split_dirs["train"])
    if not classes:
        raise DatasetNotFoundError("imagefolder", [split_dirs["train"]], _LAYOUT_HINT)
    empty: list[str] = []
    splits = {k: _scan_split(d, classes, empty) for k, d in split_dirs.items()}
    train = splits["train"]
    if not train.paths:
        raise ValueError(f"{split_dirs['train']}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}); {_LAYOUT_HINT}")
    counts = np.bincount(train.labels, minlength=len(classes))
    no_images = [c for c, n in zip(classes, counts) if n == 0]
    if no_images:
        warnings.warn(f"image folder {root}: class folder(s) {no_images} hold no training images", stacklevel=3)
    if empty:
        warnings.warn(f"image folder {root}: skipped {len(empty)} empty file(s): {empty}", stacklevel=3)
    return FolderData(train=train, val=splits.get("val"), test=splits.get("test"), classes=classes, root=root)


def load_imagefolder(cfg: DataConfig) -> FolderData:
    if cfg.root is None:
        raise ValueError(f"dataset 'imagefolder' needs `root`: {_LAYOUT_HINT}")
    return scan_folder(Path(cfg.root).expanduser())
