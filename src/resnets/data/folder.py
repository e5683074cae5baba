"""Image folders -> a bundle: decoded once into memory when that fits, else a worker DataLoader.

In memory, every image is decoded to one square size (the native size of the first image, or
``image_size``; for ImageNet-style training ``image_size / 0.875``) by resizing the shorter side
and taking the centre square: random crops then work on that square, not on the full frame.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from resnets.data.bundle import RESIDENT_LIMIT_BYTES, DataBundle, bundle_from_arrays, resolve_augment
from resnets.data.config import DataConfig
from resnets.data.decode import DECODE_ERRORS, decode_cached
from resnets.data.paths import shown
from resnets.data.pipeline import EVAL_CROP_FRACTION
from resnets.data.sources.base import ArrayData, FileSplit, FolderData

from PIL import Image


def probe_size(paths: list[str]) -> tuple[int, int]:
    """(width, height) of the first readable image."""
    for path in paths[:1000]:
        try:
            with Image.open(path) as image:
                return image.size
        except DECODE_ERRORS:
            continue
    raise ValueError(f"none of the first {min(len(paths), 1000)} images under {shown(Path(paths[0]).parent.parent)} "
                     "can be read; check that the folder holds PNG/JPEG images")


def decode_size(cfg: DataConfig, *, augment: str, native: int) -> int:
    """Side of the square each image is decoded to: the output size, or for ImageNet-style
    training the resize side that its evaluation centre crop cuts from."""
    if cfg.image_size is None:
        return native
    return round(cfg.image_size / EVAL_CROP_FRACTION[augment])


def bundle_from_folder(
    cfg: DataConfig, data: FolderData, *, device: torch.device, rank: int, world_size: int
) -> DataBundle:
    native = min(probe_size(data.train.paths))
    augment = resolve_augment(cfg, native_size=native)
    size = decode_size(cfg, augment=augment, native=native)
    splits = {k: s for k, s in (("train", data.train), ("val", data.val), ("test", data.test)) if s is not None}
    total = sum(len(s.paths) for s in splits.values())
    in_memory = cfg.device_resident == "yes" or (
        cfg.device_resident == "auto" and total * 3 * size * size <= RESIDENT_LIMIT_BYTES
    )
    if not in_memory:
        from resnets.data.folder_loader import bundle_from_files

        return bundle_from_files(cfg, data, augment=augment, device=device, rank=rank, world_size=world_size)
    arrays = decode_splits(cfg, splits, size=size)
    return bundle_from_arrays(cfg, arrays_from(arrays, data.classes), device=device, rank=rank, world_size=world_size, augment=augment)


def decode_splits(cfg: DataConfig, splits: dict[str, FileSplit], *, size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Decode every split (one cache entry for all of them); warn once listing unreadable files."""
    paths = [p for s in splits.values() for p in s.paths]
    stamps = [t for s in splits.values() for t in (s.stamps or [])]
    images, ok = decode_cached(
        paths, size=size, workers=cfg.workers, use_cache=cfg.decode_cache,
        stamps=stamps if len(stamps) == len(paths) else None,
    )
    bad = [shown(p) for p, good in zip(paths, ok) if not good]
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image file(s): {', '.join(bad)}", stacklevel=3)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    start = 0
    for key, split in splits.items():
        stop = start + len(split.paths)
        keep = ok[start:stop]
        out[key] = (images[start:stop][keep], split.labels[keep])
        start = stop
    return out


def arrays_from(decoded: dict[str, tuple[np.ndarray, np.ndarray]], classes: list[str]) -> ArrayData:
    train_x, train_y = decoded["train"]
    val = decoded.get("val", (None, None))
    test = decoded.get("test", (None, None))
    return ArrayData(
        train_x=train_x, train_y=train_y, classes=list(classes),
        val_x=val[0], val_y=val[1], test_x=test[0], test_y=test[1],
    )
