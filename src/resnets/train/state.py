"""The mutable state of a training run, and its (weights_only-loadable) serialisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from resnets.train.runtime import rng_state, set_rng_state
from resnets.train.schedule import LRSchedule


@dataclass
class TrainState:
    """``model`` is the unwrapped module (what is saved); ``step_model`` runs the steps
    (the same module, or its compiled / DDP-wrapped form)."""

    model: nn.Module
    step_model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    steps_per_epoch: int
    frozen: list[nn.Module] = field(default_factory=list)
    step: int = 0
    best_val_acc: float = -1.0
    best_val_loss: float = float("inf")
    best_step: int = -1
    last_saved_step: int = -1
    window: dict[str, float] = field(default_factory=lambda: {"loss": 0.0, "correct": 0.0, "seen": 0.0, "steps": 0.0})

    @property
    def total_steps(self) -> int:
        return self.schedule.total_steps

    @property
    def epoch(self) -> int:
        return self.step // self.steps_per_epoch

    def set_train_mode(self) -> None:
        """Train mode, except the frozen parts, whose BN keeps its running statistics."""
        self.step_model.train()
        for module in self.frozen:
            module.eval()

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "optimizer": self.optimizer.state_dict(),
            "best_val_acc": self.best_val_acc,
            "best_val_loss": self.best_val_loss,
            "best_step": self.best_step,
            "window": dict(self.window),
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.best_val_acc = float(state["best_val_acc"])
        self.best_val_loss = float(state["best_val_loss"])
        self.best_step = int(state["best_step"])
        self.window = {k: float(v) for k, v in state["window"].items()}
        self.last_saved_step = self.step
        set_rng_state(state["rng"])
