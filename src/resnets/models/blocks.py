"""Residual units and their shortcuts.

Post-activation units (He et al. 2015) compute ``relu(F(x) + shortcut(x))``;
pre-activation units (He et al. 2016) compute ``F(x) + shortcut(x)`` with
BN -> ReLU -> conv ordering inside ``F`` and nothing after the addition.
Every unit has a ``residual`` switch: ``residual=False`` removes the shortcut
and the addition entirely, giving the paper's "plain" twin.

Module names (``conv1``, ``bn1``, ``downsample`` …) follow torchvision so that
its checkpoints load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NormLayer = Callable[[int], nn.Module]


def no_norm(channels: int) -> nn.Module:
    """The norm layer of a network trained without normalisation: nothing."""
    return nn.Identity()


# norm option -> the layer after each convolution ("none": De & Smith 2020, Zhang et al. 2019)
NORMS: dict[str, NormLayer] = {"batch": nn.BatchNorm2d, "none": no_norm}

SHORTCUTS = ("A", "B", "C", "none")
# Where option A puts its zero channels: "after" the old ones (fb.resnet.torch, our default) or
# "split" half before and half after (the common PyTorch CIFAR code, akamaster/pytorch_resnet_cifar10).
PAD_PLACEMENTS = ("after", "split")


def conv3x3(in_ch: int, out_ch: int, *, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, groups=groups, bias=False, dilation=dilation)


def conv1x1(in_ch: int, out_ch: int, *, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and add zero channels. No parameters.

    ``placement="after"`` appends the zero channels after the old ones; ``"split"`` puts half
    of them before and half after (the old channels land in the middle). Weights trained with
    one placement give wrong answers with the other: the two are not interchangeable.
    """

    def __init__(self, *, stride: int, extra_channels: int, placement: str = "after") -> None:
        super().__init__()
        if placement not in PAD_PLACEMENTS:
            raise ValueError(f"pad_placement={placement!r} is not known; choose one of {', '.join(PAD_PLACEMENTS)}")
        self.stride = stride
        self.extra_channels = extra_channels
        self.placement = placement
        before = extra_channels // 2 if placement == "split" else 0
        self.pad = (0, 0, 0, 0, before, extra_channels - before)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels > 0:
            x = F.pad(x, self.pad)  # (N, C + extra, H, W)
        return x

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}, placement={self.placement!r}"


def make_shortcut(
    kind: str, in_ch: int, out_ch: int, *, stride: int, norm_layer: NormLayer | None, pad_placement: str = "after"
) -> nn.Module | None:
    """The shortcut of one unit; ``None`` is the identity (or no shortcut for ``"none"``).

    A: zero-pad where shapes change (zero channels placed by ``pad_placement``);
    B: 1x1 projection where shapes change; C: 1x1 projection on every unit.
    ``norm_layer=None`` gives a bare conv (pre-activation units project the already
    normalised input).
    """
    if kind not in SHORTCUTS:
        raise ValueError(f"unknown shortcut option {kind!r}; choose one of {', '.join(SHORTCUTS)}")
    changes = stride != 1 or in_ch != out_ch
    if kind == "none" or (kind in ("A", "B") and not changes):
        return None
    if kind == "A":
        if out_ch < in_ch:
            raise ValueError(
                f"shortcut option A can only add channels ({in_ch} -> {out_ch}); use shortcut='B' here"
            )
        return ZeroPadShortcut(stride=stride, extra_channels=out_ch - in_ch, placement=pad_placement)
    conv = conv1x1(in_ch, out_ch, stride=stride)
    return conv if norm_layer is None else nn.Sequential(conv, norm_layer(out_ch))


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample while training."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: Tensor) -> Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class ScalarBias(nn.Module):
    """One learned scalar added to the whole input (Fixup's biases), initialised to 0."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bias


class _Unit(nn.Module):
    """Shared plumbing: the shortcut, drop-path, the branch gate and the addition.

    ``branch_gate=True`` (SkipInit, De & Smith 2020) multiplies the residual branch by one learned
    scalar ``gate``, initialised to 0: the unit starts as its shortcut, whatever its weights.
    """

    expansion = 1
    preact = False
    relu: nn.Module
    bn1: nn.Module  # pre-activation units: the BN whose output a projection shortcut takes

    def __init__(
        self,
        inplanes: int,
        planes: int,
        *,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        first_dilation: int | None = None,
        norm_layer: NormLayer = nn.BatchNorm2d,
        residual: bool = True,
        drop_path: float = 0.0,
        stride_in_1x1: bool = False,
        branch_gate: bool = False,
    ) -> None:
        super().__init__()
        if not residual and downsample is not None:
            raise ValueError("a plain unit (residual=False) cannot have a shortcut module")
        if not residual and branch_gate:
            raise ValueError("a plain unit (residual=False) has no residual branch to gate; leave branch_gate off")
        self._build(inplanes, planes, stride=stride, groups=groups, base_width=base_width, dilation=dilation,
                    first_dilation=first_dilation or dilation, norm_layer=norm_layer, stride_in_1x1=stride_in_1x1)
        self.stride = stride
        self.residual = residual
        self.downsample = downsample
        # pre-activation units feed a projection the normalised input (the paper's code)
        self.project_preactivated = self.preact and isinstance(downsample, nn.Conv2d)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.gate: nn.Parameter | None = nn.Parameter(torch.zeros(())) if branch_gate else None

    def _build(
        self, inplanes: int, planes: int, *, stride: int, groups: int, base_width: int, dilation: int,
        first_dilation: int, norm_layer: NormLayer, stride_in_1x1: bool,
    ) -> None:
        """Create the residual branch's layers (each unit type defines its own)."""
        raise TypeError(f"{type(self).__name__} must define _build")

    last_layer_name = "bn2"  # the layer whose zeroing silences the branch

    def last_layer(self) -> nn.Module:
        """The layer whose zeroing makes the residual branch output exactly zero."""
        return getattr(self, self.last_layer_name)

    def zero_init_last(self) -> None:
        """Zero the branch's last layer (BN scale and shift, or conv): the unit becomes the identity."""
        last = self.last_layer()
        nn.init.zeros_(cast(Tensor, last.weight))
        bias = getattr(last, "bias", None)
        if bias is not None:
            nn.init.zeros_(bias)

    def shortcut(self, x: Tensor) -> Tensor:
        """What the unit adds its branch to: the identity, or the shortcut where shapes change (on the
        pre-activated input for a pre-activation unit's projection)."""
        if self.downsample is None:
            return x
        if self.project_preactivated:
            x = self.relu(self.bn1(x))
        return self.downsample(x)

    def _add(self, branch: Tensor, identity: Tensor) -> Tensor:
        if self.gate is not None:
            branch = branch * self.gate
        branch = self.drop_path(branch)
        if not self.residual:
            return branch
        if self.downsample is not None:
            identity = self.downsample(identity)
        return branch + identity


class BasicBlock(_Unit):
    """Two 3x3 convolutions (ResNet-18/34 and the CIFAR nets)."""

    expansion = 1

    def _build(
        self, inplanes: int, planes: int, *, stride: int, groups: int, base_width: int, dilation: int,
        first_dilation: int, norm_layer: NormLayer, stride_in_1x1: bool,
    ) -> None:
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock supports only groups=1 and base_width=64; use a Bottleneck model")
        self.conv1 = conv3x3(inplanes, planes, stride=stride, dilation=first_dilation)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.bn2 = norm_layer(planes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(self._add(out, x))


class FixupBasicBlock(_Unit):
    """A basic unit without normalisation, as Fixup builds it (Zhang, Dauphin and Ma 2019):
    a scalar bias before each convolution and activation, a scalar multiplier at the end of the
    branch. ``ResNet(fixup=True)`` initialises it (last conv zero, the first scaled by L^-1/2).
    The shortcut takes the input with the first bias added, as in the paper's code."""

    expansion = 1
    last_layer_name = "conv2"

    def _build(
        self, inplanes: int, planes: int, *, stride: int, groups: int, base_width: int, dilation: int,
        first_dilation: int, norm_layer: NormLayer, stride_in_1x1: bool,
    ) -> None:
        if groups != 1 or base_width != 64:
            raise ValueError("FixupBasicBlock supports only groups=1 and base_width=64")
        self.bias1a, self.bias1b, self.bias2a, self.bias2b = ScalarBias(), ScalarBias(), ScalarBias(), ScalarBias()
        self.conv1 = conv3x3(inplanes, planes, stride=stride, dilation=first_dilation)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.scale = nn.Parameter(torch.ones(()))

    def zero_init_last(self) -> None:
        """Zero the last conv and the bias after it: the branch outputs exactly zero."""
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.bias2b.bias)

    def shortcut(self, x: Tensor) -> Tensor:
        return super().shortcut(self.bias1a(x) if self.downsample is not None else x)

    def forward(self, x: Tensor) -> Tensor:
        biased = self.bias1a(x)
        out = self.relu(self.bias1b(self.conv1(biased)))
        out = self.bias2b(self.conv2(self.bias2a(out)) * self.scale)
        return self.relu(self._add(out, biased if self.downsample is not None else x))


class Bottleneck(_Unit):
    """1x1 reduce, 3x3, 1x1 expand (x4). ``stride_in_1x1`` gives the paper's v1;
    the default puts the stride on the 3x3 ("v1.5", as torchvision)."""

    expansion = 4
    last_layer_name = "bn3"

    def _build(
        self, inplanes: int, planes: int, *, stride: int, groups: int, base_width: int, dilation: int,
        first_dilation: int, norm_layer: NormLayer, stride_in_1x1: bool,
    ) -> None:
        width = int(planes * (base_width / 64.0)) * groups
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(inplanes, width, stride=s1)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride=s3, groups=groups, dilation=first_dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(self._add(out, x))


class PreActBasicBlock(_Unit):
    """BN -> ReLU -> 3x3 conv, twice; nothing after the addition (He et al. 2016).

    A projection shortcut takes the pre-activated input, as in the paper's code.
    """

    expansion = 1
    preact = True
    last_layer_name = "conv2"

    def _build(
        self, inplanes: int, planes: int, *, stride: int, groups: int, base_width: int, dilation: int,
        first_dilation: int, norm_layer: NormLayer, stride_in_1x1: bool,
    ) -> None:
        if groups != 1 or base_width != 64:
            raise ValueError("PreActBasicBlock supports only groups=1 and base_width=64")
        self.bn1 = norm_layer(inplanes)
        self.relu = nn.ReLU(inplace=False)
        self.conv1 = conv3x3(inplanes, planes, stride=stride, dilation=first_dilation)
        self.bn2 = norm_layer(planes)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        shortcut_in = pre if self.project_preactivated else x
        return self._add(out, shortcut_in)


class PreActBottleneck(_Unit):
    """Pre-activation bottleneck (ResNet-164/1001 on CIFAR): BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1."""

    expansion = 4
    preact = True
    last_layer_name = "conv3"

    def _build(
        self, inplanes: int, planes: int, *, stride: int, groups: int, base_width: int, dilation: int,
        first_dilation: int, norm_layer: NormLayer, stride_in_1x1: bool,
    ) -> None:
        width = int(planes * (base_width / 64.0)) * groups
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.bn1 = norm_layer(inplanes)
        self.relu = nn.ReLU(inplace=False)
        self.conv1 = conv1x1(inplanes, width, stride=s1)
        self.bn2 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride=s3, groups=groups, dilation=first_dilation)
        self.bn3 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        shortcut_in = pre if self.project_preactivated else x
        return self._add(out, shortcut_in)


BLOCKS: dict[str, type[_Unit]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
    "preact_basic": PreActBasicBlock,
    "preact_bottleneck": PreActBottleneck,
}
# block -> its Fixup form (``ResNet(fixup=True)``)
FIXUP_BLOCKS: dict[str, type[_Unit]] = {"basic": FixupBasicBlock}


Unit = _Unit  # the base of every residual (or plain) unit


def is_unit(module: nn.Module) -> bool:
    """True for any residual (or plain) unit of this module."""
    return isinstance(module, _Unit)


def count_weighted_layers(unit: nn.Module) -> int:
    """Convolutions on the main path of a unit (shortcut projections not counted, as in the paper)."""
    shortcut = getattr(unit, "downsample", None)
    skip = {id(m) for m in shortcut.modules()} if isinstance(shortcut, nn.Module) else set()
    return sum(1 for m in unit.modules() if isinstance(m, nn.Conv2d) and id(m) not in skip)


__all__ = [
    "BLOCKS",
    "FIXUP_BLOCKS",
    "BasicBlock",
    "Bottleneck",
    "DropPath",
    "FixupBasicBlock",
    "NORMS",
    "PAD_PLACEMENTS",
    "PreActBasicBlock",
    "PreActBottleneck",
    "SHORTCUTS",
    "ScalarBias",
    "ZeroPadShortcut",
    "conv1x1",
    "conv3x3",
    "count_weighted_layers",
    "is_unit",
    "make_shortcut",
]
