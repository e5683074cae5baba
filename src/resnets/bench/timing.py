"""Timing two step functions fairly: warm-up, then alternating repetitions, medians.

Each repetition times ``steps`` calls of one side between two device synchronisations; the
sides alternate and the one that goes first alternates too, so slow drifts of a shared
machine (other processes, clocks) fall on both sides alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch

from resnets.bench.workloads import Side


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], None], *, steps: int, device: torch.device) -> float:
    """Seconds for ``steps`` calls of ``step``, the device's queued work included."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return time.perf_counter() - start


def alternate(
    sides: Sequence[Side], *, warmup: int, reps: int, steps: int, batch: int, device: torch.device,
    on_warm: Callable[[float], None] | None = None,
) -> dict[str, list[float]]:
    """Images per second of each side, one value per repetition, after ``warmup`` steps each.
    ``on_warm`` receives the seconds the timed steps are expected to take, from the warm-up's pace
    (an upper estimate: the first steps are the slowest)."""
    expected = 0.0
    for side in sides:
        seconds = time_steps(side.step, steps=warmup, device=device)
        expected += seconds / max(1, warmup) * reps * steps
    if on_warm is not None:
        on_warm(expected)
    rates: dict[str, list[float]] = {side.name: [] for side in sides}
    for rep in range(reps):
        order = list(sides) if rep % 2 == 0 else list(reversed(sides))
        for side in order:
            seconds = time_steps(side.step, steps=steps, device=device)
            rates[side.name].append(batch * steps / max(seconds, 1e-12))
    return rates


def summarize(rates: Sequence[float]) -> dict[str, float]:
    """Median, min, max and relative spread ((max - min) / median) of per-repetition rates."""
    med = statistics.median(rates)
    return {
        "median": med,
        "min": min(rates),
        "max": max(rates),
        "spread": (max(rates) - min(rates)) / med if med > 0 else 0.0,
    }


__all__ = ["alternate", "summarize", "synchronize", "time_steps"]
