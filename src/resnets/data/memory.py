"""A dataset held in memory (digits, mnist, cifar, small folders, synthetic) -> a bundle of tensor loaders."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from resnets.data.arrays import resize_uint8
from resnets.data.augmentations import get_augmentation
from resnets.data.bundle import DataBundle, resolve_augment, storage_device
from resnets.data.config import DataConfig
from resnets.data.loader import TensorLoader
from resnets.data.pipeline import BatchPipeline
from resnets.data.sources import ArrayData
from resnets.data.splits import stratified_split
from resnets.data.stats import channel_stats


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
        crop_fraction=get_augmentation(augment).eval_crop_fraction,
        device_resident=store == device,
    )


def _tensor(array: np.ndarray, device: torch.device, pin: bool) -> Tensor:
    t = torch.from_numpy(np.ascontiguousarray(array))
    if pin:
        return t.pin_memory()
    return t.to(device)
