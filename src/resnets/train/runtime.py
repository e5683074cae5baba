"""Where and how the step runs: device, precision, memory format, process rank.

A distributed launcher builds a :class:`Runtime` with its ``rank``/``world_size`` and a
``wrap`` (e.g. ``DistributedDataParallel``); the engine runs the wrapped module, saves the
unwrapped one, and only the main rank logs and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from resnets.train.config import LoopConfig

AUTOCAST: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


@dataclass
class Runtime:
    device: torch.device
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False
    rank: int = 0
    world_size: int = 1
    wrap: Callable[[nn.Module], nn.Module] | None = None
    run_dir: Path | None = None  # the main rank's run directory, known to every rank (only the main rank writes)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """An input batch (N, C, H, W) in the memory format the model runs in."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(t)
        return t

    def barrier(self) -> None:
        """Wait for every rank (e.g. until the main rank has finished writing a checkpoint)."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


DEVICE_NAMES = "auto, cpu, cuda, cuda:N, mps"
# device type -> (is it usable here, what to say when it is not)
_DEVICE_CHECKS: dict[str, Callable[[], bool]] = {
    "cpu": lambda: True,
    "cuda": lambda: torch.cuda.is_available(),
    "mps": lambda: bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
}


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a usable torch device (None or "auto": CUDA when available, else the CPU).
    A name torch does not know, or a device this machine lacks, is a ValueError in one line."""
    if device is None or device == "auto":
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"device {str(device)!r} is not a device name; use one of {DEVICE_NAMES}") from None
    usable = _DEVICE_CHECKS.get(dev.type)
    if usable is None:
        raise ValueError(f"device {str(device)!r} cannot run training or inference; use one of {DEVICE_NAMES}")
    if not usable():
        raise ValueError(f"device {str(device)!r}: {dev.type.upper()} is not available on this machine; "
                         "use --device cpu (or auto)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                         f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return dev


def make_runtime(
    loop: LoopConfig,
    *,
    device: torch.device | str | None = None,
    rank: int = 0,
    world_size: int = 1,
    wrap: Callable[[nn.Module], nn.Module] | None = None,
) -> Runtime:
    """Resolve ``auto`` precision (bf16 on CUDA, fp32 elsewhere) and channels_last (on: it is
    faster on CUDA and, measured in benchmarks/RESULTS.md, 1.09-1.22x on the CPU too)."""
    dev = resolve_device(device)
    precision = loop.precision if loop.precision != "auto" else ("bf16" if dev.type == "cuda" else "fp32")
    channels_last = loop.channels_last if isinstance(loop.channels_last, bool) else dev.type in ("cuda", "cpu")
    return Runtime(
        device=dev, autocast_dtype=AUTOCAST[precision], channels_last=channels_last,
        rank=rank, world_size=world_size, wrap=wrap,
    )


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
