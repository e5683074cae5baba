"""The training run's runtime (from ``train.precision``/``train.channels_last``), seeding and
determinism. The policy that resolves "auto" is :mod:`resnets.runtime`; it is not repeated here."""

from __future__ import annotations

import contextlib
import os
import random
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from resnets.runtime import Runtime
from resnets.train.config import LoopConfig


def make_runtime(
    loop: LoopConfig,
    *,
    device: torch.device | str | None = None,
    rank: int = 0,
    world_size: int = 1,
    wrap: Callable[[nn.Module], nn.Module] | None = None,
) -> Runtime:
    """The runtime of a training run: ``loop``'s precision and layout, resolved for ``device``."""
    return Runtime.resolve(device=device, precision=loop.precision, channels_last=loop.channels_last,
                           rank=rank, world_size=world_size, wrap=wrap)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def determinism(enabled: bool) -> Iterator[None]:
    """``torch.use_deterministic_algorithms`` for the duration (restored afterwards)."""
    if not enabled:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    bench = torch.backends.cudnn.benchmark
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.backends.cudnn.benchmark = bench


__all__ = ["Runtime", "determinism", "make_runtime", "seed_everything"]
