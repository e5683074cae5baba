"""Large image folders: a torch DataLoader with decode workers and per-sample PIL transforms.

The sample order is the same seeded permutation as the tensor loader's, and each sample's
augmentation is seeded from (seed, epoch, rank, position), so ``epoch(e, start=k)`` yields the
tail of ``epoch(e)`` exactly, whatever the number of workers.
"""

from __future__ import annotations

import signal
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info
from torchvision.transforms import v2

from resnets.data.augmentations import get_augmentation
from resnets.data.bundle import DataBundle
from resnets.data.config import DataConfig
from resnets.data.decode import DECODE_ERRORS, probe_size
from resnets.data.images import open_image, resize_center_crop_pil, to_mode
from resnets.data.loader import epoch_order
from resnets.data.paths import shown
from resnets.data.sources.base import FileSplit, FolderData
from resnets.data.splits import mix_seed, rank_shard, stratified_split
from resnets.data.stats import channel_stats_of

STATS_SAMPLES = 1000  # training images decoded to estimate mean / std


def _leave_ctrl_c_to_the_main_process(worker_id: int) -> None:
    """A decode worker ignores the Ctrl-C a terminal sends to the whole process group: the main
    process finishes its step, saves, and then stops the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _resize_crop(size: int, crop_fraction: float) -> Callable[[Image.Image], Image.Image]:
    """The evaluation resize-and-crop of :mod:`resnets.data.images`, as a transform of one PIL image."""

    def apply(image: Image.Image) -> Image.Image:
        return resize_center_crop_pil(image, size=size, crop_fraction=crop_fraction)

    return apply


def _train_ops(augment: str, size: int) -> list[Callable]:
    aug = get_augmentation(augment)
    return [*([] if aug.crops else [_resize_crop(size, 1.0)]), *aug.image(size)]


def _eval_ops(augment: str, size: int) -> list[Callable]:
    return [_resize_crop(size, get_augmentation(augment).eval_crop_fraction)]


def _finish(ops: list[Callable], mean: tuple[float, ...] | None, std: tuple[float, ...] | None) -> Callable:
    """PIL image -> ``ops`` (the resize-crop on the PIL image, then random ops on the uint8
    tensor) -> float32 in [0, 1] -> normalised (when mean/std given)."""
    pil = [op for op in ops if not isinstance(op, v2.Transform)]
    tensor = [op for op in ops if isinstance(op, v2.Transform)]
    tail: list[v2.Transform] = [v2.ToDtype(torch.float32, scale=True)]
    if mean is not None and std is not None:
        tail.append(v2.Normalize(list(mean), list(std)))
    return v2.Compose([*pil, v2.ToImage(), *tensor, *tail])


class FileDataset(Dataset):
    """Items are (index, seed): seed >= 0 seeds the sample's random transform, -1 means none.
    ``reported``: the unreadable files already warned about, shared by one bundle's datasets."""

    def __init__(self, split: FileSplit, transform: Callable, *, reported: set[str] | None = None) -> None:
        self.paths = list(split.paths)
        self.labels = split.labels
        self.transform = transform
        self._reported: set[str] = reported if reported is not None else set()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: tuple[int, int]) -> tuple[Tensor, int] | None:
        index, seed = item
        path = self.paths[index]
        try:
            image = to_mode(open_image(path), in_chans=3)
        except DECODE_ERRORS:
            if path not in self._reported:
                self._reported.add(path)
                warnings.warn(f"skipped unreadable image file {shown(path)}", stacklevel=2)
            return None
        if seed < 0:
            return self.transform(image), int(self.labels[index])
        # The transforms draw from the global CPU generator: seed it for this sample (and, in
        # the main process, put the caller's state back afterwards).
        rng = torch.default_generator
        saved = rng.get_state() if get_worker_info() is None else None
        rng.manual_seed(seed)
        try:
            return self.transform(image), int(self.labels[index])
        finally:
            if saved is not None:
                rng.set_state(saved)


def _collate(batch: list) -> tuple[Tensor, Tensor] | None:
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    x = torch.stack([b[0] for b in batch])  # (B, C, H, W)
    return x, torch.tensor([b[1] for b in batch], dtype=torch.int64)


class _ListSampler(Sampler):
    def __init__(self) -> None:
        self.items: list[tuple[int, int]] = []

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class FolderLoader:
    """Same interface as :class:`resnets.data.loader.TensorLoader`, decoding files per batch."""

    def __init__(
        self, split: FileSplit, *, transform: Callable, batch_size: int, train: bool, device: torch.device,
        seed: int, workers: int, rank: int = 0, world_size: int = 1, reported: set[str] | None = None,
    ) -> None:
        self.dataset = FileDataset(split, transform, reported=reported)
        self.batch_size, self.train, self.device, self.seed = batch_size, train, device, seed
        self.rank, self.world_size = rank, world_size
        self._total = len(self.dataset)
        self.num_samples = len(self.indices(0))
        self._sampler = _ListSampler()
        self._loader = DataLoader(
            self.dataset, batch_size=batch_size, sampler=self._sampler, num_workers=workers,
            collate_fn=_collate, pin_memory=device.type == "cuda", drop_last=train,
            persistent_workers=workers > 0, worker_init_fn=_leave_ctrl_c_to_the_main_process,
        )
        if train and len(self) == 0:
            raise ValueError(f"the training split has {self.num_samples} samples on this rank, "
                             f"fewer than batch_size={batch_size}")

    def __len__(self) -> int:
        return self.num_samples // self.batch_size if self.train else -(-self.num_samples // self.batch_size)

    def indices(self, epoch: int) -> np.ndarray:
        order = epoch_order(self._total, seed=self.seed, epoch=epoch, shuffle=self.train)
        return rank_shard(order, rank=self.rank, world_size=self.world_size, even=self.train)

    def epoch(self, epoch: int, *, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.indices(epoch)
        first = start * self.batch_size
        if self.train:
            base = mix_seed(self.seed, epoch, self.rank, 0xF01D) & 0x3FFFFFFFFFFF
            seeds = base + np.arange(first, len(order))
        else:
            seeds = np.full(len(order) - first, -1)
        self._sampler.items = list(zip(order[first:].tolist(), seeds.tolist()))
        for batch in self._loader:
            if batch is not None:
                x, y = batch
                yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def folder_stats(
    split: FileSplit, *, augment: str, size: int, seed: int, workers: int, reported: set[str] | None = None,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean / std over up to STATS_SAMPLES training images (evaluation transform)."""
    rng = np.random.default_rng(mix_seed(seed, 0x57A7))
    pick = np.sort(rng.permutation(len(split.paths))[:STATS_SAMPLES])
    dataset = FileDataset(split, _finish(_eval_ops(augment, size), None, None), reported=reported)
    loader = DataLoader(dataset, batch_size=64, sampler=[(int(i), -1) for i in pick], num_workers=workers, collate_fn=_collate)
    return channel_stats_of((batch[0] for batch in loader if batch is not None), channels=3, max_value=1.0)


def _subset(split: FileSplit, idx: np.ndarray) -> FileSplit:
    return FileSplit(paths=[split.paths[i] for i in idx], labels=split.labels[idx])


def bundle_from_files(
    cfg: DataConfig, data: FolderData, *, augment: str, device: torch.device, rank: int, world_size: int
) -> DataBundle:
    size = cfg.image_size or min(probe_size(data.train.paths))
    train, val = data.train, data.val
    if val is None and cfg.val_fraction > 0:
        keep, held = stratified_split(train.labels, fraction=cfg.val_fraction, seed=cfg.seed)
        train, val = _subset(train, keep), _subset(train, held)
    reported: set[str] = set()  # each unreadable file is listed once (per process)
    mean, std = folder_stats(train, augment=augment, size=size, seed=cfg.seed, workers=cfg.workers, reported=reported)

    def make(split: FileSplit | None, *, is_train: bool) -> FolderLoader | None:
        if split is None:
            return None
        ops = _train_ops(augment, size) if is_train else _eval_ops(augment, size)
        return FolderLoader(
            split, transform=_finish(ops, mean, std), batch_size=cfg.batch_size if is_train else cfg.eval_batch,
            train=is_train, device=device, seed=cfg.seed, workers=cfg.workers, rank=rank, world_size=world_size,
            reported=reported,
        )

    return DataBundle(
        name=cfg.name, train=make(train, is_train=True), val=make(val, is_train=False),  # type: ignore[arg-type]
        test=make(data.test, is_train=False), num_classes=len(data.classes), in_chans=3, image_size=size,
        classes=list(data.classes), mean=mean, std=std, augment=augment,
        crop_fraction=get_augmentation(augment).eval_crop_fraction, device_resident=False,
    )
