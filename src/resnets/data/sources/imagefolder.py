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


def _scan_split(folder: Path, classes: list[str], empty: list[Path]) -> FileSplit:
    """Every image file under ``folder/<class>/`` (recursively), sorted; zero-byte files go to ``empty``."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(_class_dirs(folder)) - set(index))
    if unknown:
        raise ValueError(f"{folder}: class folder(s) {unknown} are not among the training classes {classes}")
    paths: list[Path] = []
    labels: list[int] = []
    for name in _class_dirs(folder):
        for dirpath, dirnames, filenames in os.walk(folder / name):
            dirnames.sort()
            for fname in sorted(filenames):
                path = Path(dirpath) / fname
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    continue
                if path.stat().st_size == 0:
                    empty.append(path)
                    continue
                paths.append(path)
                labels.append(index[name])
    return FileSplit(paths=paths, labels=np.asarray(labels, dtype=np.int64))


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
    empty: list[Path] = []
    splits = {k: _scan_split(d, classes, empty) for k, d in split_dirs.items()}
    train = splits["train"]
    if not train.paths:
        raise ValueError(f"{split_dirs['train']}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}); {_LAYOUT_HINT}")
    counts = np.bincount(train.labels, minlength=len(classes))
    no_images = [c for c, n in zip(classes, counts) if n == 0]
    if no_images:
        warnings.warn(f"image folder {root}: class folder(s) {no_images} hold no training images", stacklevel=3)
    if empty:
        warnings.warn(f"image folder {root}: skipped {len(empty)} empty file(s): {[str(p) for p in empty]}", stacklevel=3)
    return FolderData(train=train, val=splits.get("val"), test=splits.get("test"), classes=classes, root=root)


def load_imagefolder(cfg: DataConfig) -> FolderData:
    if cfg.root is None:
        raise ValueError(f"dataset 'imagefolder' needs `root`: {_LAYOUT_HINT}")
    return scan_folder(Path(cfg.root).expanduser())
