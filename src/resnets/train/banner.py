"""What a run is about to do, in a few lines printed before its first step: the model, the data
(where from, how many images and classes, the splits), the length and the schedule, the
device and precision, the run directory, and notes on the recipe (warnings included)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from resnets.data import DataBundle
from resnets.runtime import Runtime
from resnets.train.config import TrainConfig
from resnets.train.state import TrainState

# the warm-up covers more than this fraction of the run: most of the run never reaches the base rate
WARMUP_WARN_FRACTION = 0.5


def _count(model: nn.Module) -> str:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    text = f"{total / 1e6:.2f} M parameters"
    return text if trainable == total else f"{text}, {trainable / 1e6:.2f} M trainable"


def _splits(bundle: DataBundle, world_size: int) -> str:
    parts = [f"{name} {loader.num_samples:,}" for name, loader in
             (("train", bundle.train), ("val", bundle.val), ("test", bundle.test)) if loader is not None]
    return " / ".join(parts) + (" per process" if world_size > 1 else "")


def warmup_warning(state: TrainState) -> str | None:
    """A warning when the warm-up covers most of the run (a shortened recipe, typically)."""
    warmup, total = state.schedule.warmup_steps, state.total_steps
    if warmup > WARMUP_WARN_FRACTION * total:
        return (f"warning: the warm-up ({warmup} steps) covers {100 * min(1.0, warmup / total):.0f}% of this "
                f"{total}-step run; shorten it (schedule.warmup=...) or train longer")
    return None


def start_banner(
    cfg: TrainConfig, bundle: DataBundle, state: TrainState, runtime: Runtime, *, run_dir: Path | None,
    resumed: bool, notes: list[str],
) -> list[str]:
    """The lines printed before training starts (one screen at most)."""
    s = state.schedule
    epochs = state.total_steps / state.steps_per_epoch
    layout = ", channels_last" if runtime.channels_last else ""
    processes = f", {runtime.world_size} processes" if runtime.world_size > 1 else ""
    n = torch.get_num_threads()
    threads = f", {n} CPU thread{'s' if n > 1 else ''}" if runtime.device.type == "cpu" else ""
    warmup = f", warm-up {s.warmup_steps} steps" if s.warmup_steps else ""
    lines = [
        f"train {cfg.model.name} ({_count(state.model)}) on {bundle.name} ({bundle.source or 'built in'})",
        f"  data: {bundle.num_classes} classes, {bundle.in_chans}x{bundle.image_size}x{bundle.image_size} input, "
        f"images {_splits(bundle, runtime.world_size)}; batch {cfg.data.batch_size * runtime.world_size}, "
        f"augment {bundle.augment}",
        f"  length: {state.total_steps:,} steps ({epochs:.3g} epochs of {state.steps_per_epoch:,}); "
        f"{cfg.optim.name} lr {s.base_lr:.4g}, {s.name}{warmup}; evaluation "
        + (f"every {cfg.train.eval_every} steps" if cfg.train.eval_every else "every epoch"),
        f"  device: {runtime.device}, {runtime.precision_name}{layout}{processes}{threads}",
        f"  run directory: {run_dir}" + (f" (resumed at step {state.step:,})" if resumed else ""),
    ]
    warning = warmup_warning(state)
    return lines + [f"  {note}" for note in [*notes, *([warning] if warning else [])]]
