"""Where the benchmark's batches come from: one fixed synthetic batch, or the engine's loaders.

A source is a function returning the next ``(x (N, C, H, W) float32, y (N,) int64)`` on the
device. Both sides of a comparison draw from the same source in turn, so with ``--data`` the
loader's cost (decoding, augmentation, copies) is inside both sides' timings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from resnets.bench.config import BenchConfig
from resnets.data import DataConfig, Loader, load_data

BatchFn = Callable[[], tuple[Tensor, Tensor]]


@dataclass
class Batches:
    """The batches of one benchmark and what a model needs to take them."""

    train: BatchFn
    infer: BatchFn
    num_classes: int
    in_chans: int
    image_size: int
    description: str


def synthetic_batches(cfg: BenchConfig, *, device: torch.device, num_classes: int, in_chans: int,
                      image_size: int) -> Batches:
    """One random batch made once on the device: the step alone is timed."""
    gen = torch.Generator().manual_seed(cfg.seed)
    x = torch.randn(cfg.batch, in_chans, image_size, image_size, generator=gen).to(device)  # (N, C, S, S)
    y = torch.randint(0, num_classes, (cfg.batch,), generator=gen).to(device)  # (N,)

    def fixed() -> tuple[Tensor, Tensor]:
        return x, y

    return Batches(fixed, fixed, num_classes, in_chans, image_size,
                   f"one synthetic batch of {cfg.batch}x{in_chans}x{image_size}x{image_size} resident on {device}")


def _forever(loader: Loader) -> Iterator[tuple[Tensor, Tensor]]:
    epoch = 0
    while True:
        yielded = False
        for batch in loader.epoch(epoch):
            yielded = True
            yield batch
        if not yielded:
            raise ValueError("the loader yielded no batch in a whole epoch; lower the batch size")
        epoch += 1


def data_config(cfg: BenchConfig, *, native_size: int) -> DataConfig:
    """The engine's data configuration for ``cfg.data`` at ``cfg.batch``."""
    size = cfg.image_size
    return DataConfig(
        name=str(cfg.data),
        root=cfg.data_root,
        batch_size=cfg.batch,
        image_size=size,
        val_fraction=0.0,
        seed=cfg.seed,
        synthetic_shape=(3, size or native_size, size or native_size),
        synthetic_size=max(8 * cfg.batch, 512),
    )


def loader_batches(cfg: BenchConfig, *, device: torch.device, native_size: int) -> Batches:
    """Batches from the engine's loaders (``load_data``): training batches augmented, evaluation
    batches from the test split (else the training split in evaluation order)."""
    bundle = load_data(data_config(cfg, native_size=native_size), device=device)
    train_stream = _forever(bundle.train)
    infer_stream = _forever(bundle.test or bundle.val or bundle.train)
    where = "resident on the device" if bundle.device_resident else "streamed from the host"
    return Batches(
        lambda: next(train_stream), lambda: next(infer_stream), bundle.num_classes, bundle.in_chans,
        bundle.image_size,
        f"the engine's loader for {cfg.data} (batch {cfg.batch}, {bundle.image_size}px, augment={bundle.augment}, "
        f"{where})",
    )


__all__ = ["BatchFn", "Batches", "data_config", "loader_batches", "synthetic_batches"]
