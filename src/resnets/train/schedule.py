"""The learning-rate schedule: one pure function of the iteration, warm-up included.

:func:`resolve_schedule` turns a :class:`ScheduleConfig` (epochs or iterations) into an
:class:`LRSchedule` counted in iterations; :func:`lr_at` maps a step to a learning rate.
The engine writes that value into the optimizer; nothing else touches ``param_groups``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass

from resnets.train.config import ScheduleConfig


@dataclass(frozen=True)
class LRSchedule:
    """A schedule in iterations (the unit of :func:`lr_at`)."""

    name: str
    base_lr: float
    total_steps: int
    milestones: tuple[int, ...] = ()
    step_size: int = 0
    gamma: float = 0.1
    warmup_steps: int = 0
    warmup_mode: str = "linear"
    warmup_factor: float = 0.1
    min_lr: float = 0.0


def _constant(step: int, s: LRSchedule) -> float:
    return s.base_lr


def _multistep(step: int, s: LRSchedule) -> float:
    return s.base_lr * s.gamma ** bisect.bisect_right(s.milestones, step)


def _step(step: int, s: LRSchedule) -> float:
    return s.base_lr * s.gamma ** (step // s.step_size)


def _cosine(step: int, s: LRSchedule) -> float:
    span = max(1, s.total_steps - s.warmup_steps)
    t = min(1.0, max(0.0, (step - s.warmup_steps) / span))
    return s.min_lr + (s.base_lr - s.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def _warmup_linear(step: int, s: LRSchedule) -> float:
    f = s.warmup_factor
    return s.base_lr * (f + (1.0 - f) * step / s.warmup_steps)


def _warmup_constant(step: int, s: LRSchedule) -> float:
    return s.base_lr * s.warmup_factor


MAIN: dict[str, Callable[[int, LRSchedule], float]] = {
    "constant": _constant,
    "multistep": _multistep,
    "step": _step,
    "cosine": _cosine,
}
WARMUP: dict[str, Callable[[int, LRSchedule], float]] = {
    "linear": _warmup_linear,
    "constant": _warmup_constant,
}


def lr_at(step: int, schedule: LRSchedule) -> float:
    """The learning rate of iteration ``step`` (0-based)."""
    if step < schedule.warmup_steps:
        return WARMUP[schedule.warmup_mode](step, schedule)
    return MAIN[schedule.name](step, schedule)


def resolve_schedule(
    cfg: ScheduleConfig, *, base_lr: float, steps_per_epoch: int, total_steps: int
) -> LRSchedule:
    """Convert the config's epochs (or iterations) into iterations."""
    per_unit = steps_per_epoch if cfg.unit == "epoch" else 1

    def steps(x: float) -> int:
        return int(round(x * per_unit))

    return LRSchedule(
        name=cfg.name,
        base_lr=base_lr,
        total_steps=total_steps,
        milestones=tuple(steps(m) for m in cfg.milestones),
        step_size=max(1, steps(cfg.step_size)) if cfg.step_size else 0,
        gamma=cfg.gamma,
        warmup_steps=steps(cfg.warmup),
        warmup_mode=cfg.warmup_mode,
        warmup_factor=cfg.warmup_factor,
        min_lr=cfg.min_lr,
    )
