"""Where and how a network runs: the one policy for device, precision and memory layout.

Every "auto" of the package (``train.precision``, ``train.channels_last``, the benchmark's
``--device/--precision/--channels-last``, ``inference_model``'s defaults, the studies'
``--device``) is resolved here, once, into a :class:`Runtime` that is passed down:

* device: CUDA when available, else the CPU;
* precision: bf16 autocast on CUDA (unless the GPU reports no bf16 support), fp32 elsewhere.
  bf16 asked for on the CPU runs only where the CPU computes it natively (AVX512-BF16 or
  AMX-BF16, :mod:`resnets.cpu_features`), else it is refused; "auto" on the CPU stays fp32: bf16
  changes the numbers a recipe gives, and "auto" should give the same run on every CPU;
* layout: channels_last on CUDA and on the CPU (measured 1.08-1.24x faster on the CPU too,
  benchmarks/RESULTS.md), NCHW elsewhere.

A distributed launcher builds the runtime with its ``rank``/``world_size`` and a ``wrap``
(e.g. ``DistributedDataParallel``); the engine runs the wrapped module, saves the unwrapped
one, and only the main rank logs and writes checkpoints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from resnets.cpu_features import require_cpu_bf16

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
LAYOUTS: dict[str, bool] = {"on": True, "off": False}  # the command line's spelling of channels_last


DEVICE_NAMES = "auto, cpu, cuda, cuda:N, mps"
# device type -> is it usable here
_DEVICE_CHECKS: dict[str, Callable[[], bool]] = {
    "cpu": lambda: True,
    "cuda": lambda: torch.cuda.is_available(),
    "mps": lambda: bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
}


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a usable torch device (None or "auto": CUDA when available, else the CPU).
    A name torch does not know, or a device this machine lacks, is a ValueError in one line."""
    if device is None or device == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
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


def _bf16_capable(device: torch.device) -> bool:
    if device.type != "cuda":
        return False
    try:
        return bool(torch.cuda.is_bf16_supported())
    except (RuntimeError, AssertionError):  # no driver to ask: bf16, as on every GPU since Ampere
        return True


def resolve_precision(precision: str, device: torch.device, *, setting: str = "precision") -> torch.dtype | None:
    """The autocast dtype for ``precision`` ("auto", "fp32", "bf16") on ``device`` (None: fp32).
    bf16 on a CPU without native bf16 is a ValueError naming the missing instruction set and the
    fix, ``setting`` (the option as the user spells it: "train.precision", "--precision") = fp32."""
    if precision == "auto":
        return torch.bfloat16 if _bf16_capable(device) else None
    if precision not in PRECISIONS:
        raise ValueError(f"{setting} {precision!r} is not one of {['auto', *PRECISIONS]}")
    dtype = PRECISIONS[precision]
    if dtype is torch.bfloat16 and device.type == "cpu":
        require_cpu_bf16(fix=f"use {setting}{' ' if setting.startswith('-') else '='}fp32")
    return dtype


def resolve_channels_last(channels_last: bool | str | None, device: torch.device) -> bool:
    """channels_last for ``channels_last`` (True/False, "on"/"off", or "auto"/None) on ``device``."""
    if isinstance(channels_last, bool):
        return channels_last
    if channels_last is None or channels_last == "auto":
        return device.type in ("cuda", "cpu")
    if channels_last not in LAYOUTS:
        raise ValueError(f"channels_last {channels_last!r} is not one of ['auto', 'on', 'off']")
    return LAYOUTS[channels_last]


@dataclass
class Runtime:
    device: torch.device
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False
    rank: int = 0
    world_size: int = 1
    wrap: Callable[[nn.Module], nn.Module] | None = None
    run_dir: Path | None = None  # the main rank's run directory, known to every rank (only the main rank writes)

    @classmethod
    def resolve(
        cls,
        *,
        device: torch.device | str | None = None,
        precision: str = "auto",
        channels_last: bool | str | None = "auto",
        rank: int = 0,
        world_size: int = 1,
        wrap: Callable[[nn.Module], nn.Module] | None = None,
        precision_setting: str = "precision",
    ) -> Runtime:
        """The runtime with every "auto" resolved for the device (see the module's policy);
        ``precision_setting`` names the option in the message that refuses bf16 on a CPU without it."""
        dev = resolve_device(device)
        return cls(device=dev, autocast_dtype=resolve_precision(precision, dev, setting=precision_setting),
                   channels_last=resolve_channels_last(channels_last, dev), rank=rank, world_size=world_size,
                   wrap=wrap)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def precision_name(self) -> str:
        return str(self.autocast_dtype).replace("torch.", "") if self.autocast_dtype is not None else "fp32"

    def autocast(self, *, cache_enabled: bool = True) -> contextlib.AbstractContextManager[None]:
        """Autocast in the runtime's precision (``cache_enabled=False`` under CUDA-graph capture,
        where the weight casts must be replayed, not cached)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype, cache_enabled=cache_enabled)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """An input batch (N, C, H, W) in the memory format the model runs in."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def place(self, model: nn.Module) -> nn.Module:
        """``model`` moved to the device, in the runtime's memory format (in place; returned)."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

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


__all__ = [
    "DEVICE_NAMES", "LAYOUTS", "PRECISIONS", "Runtime", "resolve_channels_last", "resolve_device",
    "resolve_precision",
]
