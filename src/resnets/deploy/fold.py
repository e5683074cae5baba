"""Batch-norm folding: merge each BatchNorm2d into the convolution that feeds it.

In eval mode a BatchNorm2d is an affine map per channel,
``y = (x - mean) / sqrt(var + eps) * gamma + beta``. When ``x`` is the output of a
convolution used by nothing else, the map folds into that convolution's weight and
bias, and the BN becomes ``nn.Identity``. Modules are replaced in place of the copy;
no forward code changes.

What folds, per unit (the table :data:`FOLD_PAIRS`):

* post-activation units: every ``conv -> bn`` pair of the main path, the stem, and
  projection shortcuts ``downsample = Sequential(conv, bn)``;
* pre-activation units: ``conv1 -> bn2`` (and ``conv2 -> bn3`` in bottlenecks), where
  a conv feeds a BN directly. Their ``bn1`` (which sees the sum of the previous unit,
  also used by the shortcut) and the final BN stay as they are.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from resnets.models.blocks import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck
from resnets.models.resnet import ResNet

# (conv attribute, bn attribute) pairs where the BN reads only that conv's output
FOLD_PAIRS: dict[type[nn.Module], tuple[tuple[str, str], ...]] = {
    ResNet: (("conv1", "bn1"),),
    BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
    Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
    PreActBasicBlock: (("conv1", "bn2"),),
    PreActBottleneck: (("conv1", "bn2"), ("conv2", "bn3")),
}


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new conv (with bias) computing ``bn(conv(x))`` with ``bn``'s running statistics."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            f"{bn} keeps no running statistics (track_running_stats=False), so it cannot be folded; "
            "export without folding (fold=False)"
        )
    if bn.num_features != conv.out_channels:
        raise ValueError(f"cannot fold {bn} into {conv}: {bn.num_features} != {conv.out_channels} channels")
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)
    # compute in float64 so that the folded weights round only once
    w = conv.weight.double()  # (O, I/g, kh, kw)
    b = conv.bias.double() if conv.bias is not None else torch.zeros_like(bn.running_mean, dtype=torch.float64)
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(b)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(b)
    scale = gamma / torch.sqrt(bn.running_var.double() + bn.eps)  # (O,)
    fused.weight.copy_((w * scale.view(-1, 1, 1, 1)).to(conv.weight.dtype))
    fused.bias.copy_(((b - bn.running_mean.double()) * scale + beta).to(conv.weight.dtype))  # type: ignore[union-attr]
    return fused


def _fold_pair(parent: nn.Module, conv_name: str, bn_name: str) -> bool:
    conv, bn = getattr(parent, conv_name, None), getattr(parent, bn_name, None)
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
        return False  # already folded, or not this shape
    setattr(parent, conv_name, fold_conv_bn(conv, bn))
    setattr(parent, bn_name, nn.Identity())
    return True


def _fold_sequential(seq: nn.Sequential) -> int:
    """Fold consecutive ``Conv2d, BatchNorm2d`` entries of a Sequential (projection shortcuts)."""
    names = list(seq._modules)
    folded = 0
    for first, second in zip(names, names[1:]):
        folded += _fold_pair(seq, first, second)
    return folded


def fold_bn_(model: nn.Module) -> int:
    """Fold in place (``model`` must be in eval mode); returns the number of BNs folded."""
    if model.training:
        raise ValueError("fold_bn_ needs a model in eval mode (batch statistics cannot be folded); call model.eval()")
    folded = 0
    for module in list(model.modules()):
        for conv_name, bn_name in FOLD_PAIRS.get(type(module), ()):
            folded += _fold_pair(module, conv_name, bn_name)
        shortcut = getattr(module, "downsample", None)
        if isinstance(shortcut, nn.Sequential):
            folded += _fold_sequential(shortcut)
    return folded


def fold_bn(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` (eval mode) with every foldable BatchNorm merged into its conv.

    The original is left untouched. Outputs match ``model.eval()`` to float rounding.
    """
    folded = copy.deepcopy(model).eval()
    fold_bn_(folded)
    return folded


def count_batchnorms(model: nn.Module) -> int:
    """BatchNorm2d layers left in ``model``."""
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


__all__ = ["FOLD_PAIRS", "count_batchnorms", "fold_bn", "fold_bn_", "fold_conv_bn"]
