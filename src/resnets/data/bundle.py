"""``load_data``: a named dataset -> train / val / test loaders plus what a model needs to know."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from resnets.data.arrays import resize_uint8
from resnets.data.config import DataConfig
from resnets.data.loader import TensorLoader
from resnets.data.pipeline import EVAL_CROP_FRACTION, BatchPipeline
from resnets.data.sources import ArrayData, FolderData, get_source
from resnets.data.sources.base import check_labels
from resnets.data.splits import stratified_split
from resnets.data.stats import channel_stats
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


def load_data(
    cfg: DataConfig,
    device: torch.device = torch.device("cpu"),
    rank: int = 0,
    world_size: int = 1,
) -> DataBundle:
    """Load ``cfg.name`` and build its loaders for this ``rank`` of ``world_size``."""
    device = torch.device(device)
    data = get_source(cfg.name).load(cfg)
    if isinstance(data, ArrayData):
        check_labels(data, name=cfg.name)  # once, here, for every source: a bad label fails now, not at a step
    if isinstance(data, FolderData):
        from resnets.data.folder import bundle_from_folder

        return bundle_from_folder(cfg, data, device=device, rank=rank, world_size=world_size)
    return bundle_from_arrays(cfg, data, device=device, rank=rank, world_size=world_size)


def _hold_out(cfg: DataConfig, data: ArrayData) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    if data.val_x is not None and data.val_y is not None:
        return data.train_x, data.train_y, data.val_x, data.val_y
    if cfg.val_fraction == 0:
        return data.train_x, data.train_y, None, None
    keep, held = stratified_split(data.train_y, fraction=cfg.val_fraction, seed=cfg.seed)
    return data.train_x[keep], data.train_y[keep], data.train_x[held], data.train_y[held]


def bundle_from_arrays(
    cfg: DataConfig,
    data: ArrayData,
    *,
    device: torch.device,
    rank: int,
    world_size: int,
    augment: str | None = None,
) -> DataBundle:
    """Build a bundle from a dataset held in memory (digits, mnist, cifar, small folders, synthetic).

    ``augment`` overrides the resolution of ``cfg.augment`` (an image folder resolves it from
    the files' native size, before decoding).
    """
    c, native_h, native_w = data.shape
    augment = augment or resolve_augment(cfg, native_size=native_h)
    # Output size: cfg.image_size, else native (non-square images stay non-square except for
    # ImageNet-style crops, which are square). The stored copy is resized once, here, except
    # for ImageNet style, which keeps the native pixels its random crops need.
    out_size = cfg.image_size or (min(native_h, native_w) if augment == "imagenet" else None)
    resize_to = cfg.image_size if augment != "imagenet" else None
    train_x, train_y, val_x, val_y = _hold_out(cfg, data)
    splits = {"train": (train_x, train_y), "val": (val_x, val_y), "test": (data.test_x, data.test_y)}
    splits = {
        k: (x if resize_to is None else resize_uint8(x, size=resize_to), y)
        for k, (x, y) in splits.items()
        if x is not None and y is not None
    }
    nbytes = sum(x.nbytes for x, _ in splits.values())
    store = storage_device(cfg.device_resident, nbytes=nbytes, device=device)
    pin = store.type == "cpu" and device.type == "cuda"
    tensors = {k: (_tensor(x, store, pin), _tensor(y.astype(np.int64), store, pin)) for k, (x, y) in splits.items()}
    mean, std = channel_stats(tensors["train"][0], max_value=data.max_value)
    pipeline = BatchPipeline(
        augment=augment, out_size=out_size, mean=mean, std=std, max_value=data.max_value, device=device
    )

    def make(key: str, *, train: bool) -> TensorLoader | None:
        if key not in tensors:
            return None
        x, y = tensors[key]
        return TensorLoader(
            x, y, batch_size=cfg.batch_size if train else cfg.eval_batch, train=train, pipeline=pipeline,
            device=device, seed=cfg.seed, rank=rank, world_size=world_size,
        )

    return DataBundle(
        name=cfg.name,
        train=make("train", train=True),  # type: ignore[arg-type]
        val=make("val", train=False),
        test=make("test", train=False),
        num_classes=len(data.classes),
        in_chans=c,
        image_size=out_size or native_h,
        classes=list(data.classes),
        mean=mean,
        std=std,
        augment=augment,
        crop_fraction=EVAL_CROP_FRACTION[augment],
        device_resident=store == device,
    )


def _tensor(array: np.ndarray, device: torch.device, pin: bool) -> Tensor:
    t = torch.from_numpy(np.ascontiguousarray(array))
    if pin:
        return t.pin_memory()
    return t.to(device)
