"""Optimizers in a small registry, with optional no-decay groups for BN and biases."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from resnets.train.config import OptimConfig

ParamGroups = list[dict[str, Any]]


def param_groups(model: nn.Module, cfg: OptimConfig) -> ParamGroups:
    """Trainable parameters; with ``no_decay_norm_bias`` the 0/1-d ones (BN, biases) get no decay."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters; lower finetune.freeze_stages")
    if not cfg.no_decay_norm_bias or cfg.weight_decay == 0:
        return [{"params": [p for _, p in params], "weight_decay": cfg.weight_decay}]
    decay = [p for _, p in params if p.ndim > 1]
    no_decay = [p for _, p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def _impl(cls: type[torch.optim.Optimizer], device: torch.device) -> dict[str, bool]:
    """``fused=True`` on CUDA where the optimizer has it, else ``foreach`` on CUDA; defaults on CPU."""
    accepted = inspect.signature(cls).parameters
    if device.type == "cuda":
        if "fused" in accepted:
            return {"fused": True}
        if "foreach" in accepted:
            return {"foreach": True}
    return {}


def _sgd(groups: ParamGroups, cfg: OptimConfig, device: torch.device, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov, **_impl(torch.optim.SGD, device)
    )


def _adam(groups: ParamGroups, cfg: OptimConfig, device: torch.device, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=lr, betas=cfg.betas, eps=cfg.eps, **_impl(torch.optim.Adam, device))


def _adamw(groups: ParamGroups, cfg: OptimConfig, device: torch.device, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=lr, betas=cfg.betas, eps=cfg.eps, **_impl(torch.optim.AdamW, device))


def _rmsprop(groups: ParamGroups, cfg: OptimConfig, device: torch.device, lr: float) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        groups, lr=lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum, **_impl(torch.optim.RMSprop, device)
    )


OPTIMIZERS: dict[str, Callable[[ParamGroups, OptimConfig, torch.device, float], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adam": _adam,
    "adamw": _adamw,
    "rmsprop": _rmsprop,
}


def build_optimizer(
    model: nn.Module, cfg: OptimConfig, *, device: torch.device, lr: float | None = None
) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.name`` over ``model``'s trainable parameters, starting at ``lr``
    (a run passes the schedule's first rate; None: ``cfg.lr``)."""
    if cfg.name not in OPTIMIZERS:
        raise ValueError(f"optim.name={cfg.name!r} is not one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[cfg.name](param_groups(model, cfg), cfg, device, cfg.lr if lr is None else lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The one place that writes the learning rate (the value comes from ``lr_at``)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
