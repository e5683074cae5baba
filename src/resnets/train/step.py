"""The training step, written once: forward, loss, backward, (clip), update.

The engine's eager step (:func:`resnets.train.engine.train_step`) and the step captured as a
CUDA graph (:class:`resnets.train.cuda_graphs.GraphedTrainStep`) both run :func:`step_body`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from resnets.runtime import Runtime

StepFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]  # (x (N, C, H, W), y (N,)) -> (loss, correct)


def step_body(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    *,
    loss_fn: nn.Module,
    runtime: Runtime,
    grad_clip: float | None,
    zero_grad: bool = True,
    capture: bool = False,
) -> tuple[Tensor, Tensor]:
    """One optimizer step of ``model`` on x (N, C, H, W) (already in the runtime's layout), y (N,);
    returns (loss, correct) on the device. ``capture``: inside a CUDA-graph capture (the autocast
    weight cache is off, casts are replayed)."""
    with runtime.autocast(cache_enabled=not capture):
        logits = model(x)  # (N, K)
    loss = loss_fn(logits.float(), y)
    if zero_grad:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    correct = (logits.detach().argmax(dim=1) == y).sum()
    return loss.detach(), correct


__all__ = ["StepFn", "step_body"]
