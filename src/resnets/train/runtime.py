"""The training run's runtime (from ``train.precision``/``train.channels_last``), seeding, the
RNG states a checkpoint carries, and determinism. The policy that resolves "auto" is
:mod:`resnets.runtime`; it is not repeated here."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Iterator
from typing import Any, cast

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
                           rank=rank, world_size=world_size, wrap=wrap, precision_setting="train.precision")


def rng_state() -> dict[str, Any]:
    """Every RNG the loop may touch, as weights_only-loadable values."""
    np_state = cast(tuple[Any, ...], np.random.get_state())
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [str(np_state[0]), torch.from_numpy(np_state[1].astype(np.int64)), *map(int, np_state[2:4]),
                  float(np_state[4])],
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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


__all__ = ["Runtime", "determinism", "make_runtime", "rng_state", "seed_everything", "set_rng_state"]
