"""ResNets as backbones for detection and segmentation.

:class:`Backbone` wraps a resnets model and returns the feature maps of chosen stages
(through ``model.forward_stages``, so input checks and gradient checkpointing apply);
:func:`fpn_backbone` puts torchvision's Feature Pyramid Network on top, giving a module
that plugs into torchvision's detectors wherever ``BackboneWithFPN`` does.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, FeaturePyramidNetwork, LastLevelMaxPool

from resnets.models import ResNet, create_model, load_pretrained


class Backbone(nn.Module):
    """The feature maps of ``out_stages`` of a resnets model, as an OrderedDict.

    ``out_channels[i]`` and ``strides[i]`` describe ``out_stages[i]``. The head (pooling,
    fc, and the pre-activation nets' final BN) is not used; stages past the last one
    asked for are not run.
    """

    def __init__(self, model: ResNet, *, out_stages: Sequence[str] | None = None) -> None:
        super().__init__()
        if not isinstance(model, ResNet):
            raise TypeError(f"Backbone needs a resnets ResNet (from resnets.create_model), got {type(model).__name__}")
        info = {str(f["name"]): f for f in model.feature_info}
        stages = list(model.stage_names) if out_stages is None else list(out_stages)
        unknown = [s for s in stages if s not in info]
        if unknown or not stages:
            raise ValueError(
                f"unknown stage(s) {unknown or stages} for this model; choose from {', '.join(model.stage_names)}"
            )
        order = [s for s in model.stage_names if s in stages]
        if order != stages:
            raise ValueError(f"out_stages {stages} must be distinct and in network order ({', '.join(order)})")
        self.model = model
        self.out_stages: list[str] = stages
        self.out_channels: list[int] = [int(info[s]["channels"]) for s in stages]  # type: ignore[call-overload]
        self.strides: list[int] = [int(info[s]["stride"]) for s in stages]  # type: ignore[call-overload]
        self._indices = [model.stage_names.index(s) + 1 for s in stages]  # 0 is the stem

    def forward(self, x: Tensor) -> "OrderedDict[str, Tensor]":  # x: (N, C, H, W)
        maps = self.model.forward_intermediates(x, indices=self._indices)  # (N, C_i, H/s_i, W/s_i) each
        return OrderedDict(zip(self.out_stages, maps))


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d by torchvision's FrozenBatchNorm2d (same statistics), in place."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            with torch.no_grad():
                if child.affine:
                    frozen.weight.copy_(child.weight)
                    frozen.bias.copy_(child.bias)
                if child.running_mean is not None and child.running_var is not None:
                    frozen.running_mean.copy_(child.running_mean)
                    frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen.to(child.weight.device if child.affine else "cpu"))
        else:
            freeze_batchnorm(child)
    return module


def set_trainable_stages(model: ResNet, trainable_stages: int) -> None:
    """Train only the last ``trainable_stages`` stages; one more than the stage count trains the stem too
    (torchvision's ``trainable_layers``: 0 freezes everything, 5 trains all of an ImageNet ResNet)."""
    top = len(model.stage_names) + 1
    if not 0 <= trainable_stages <= top:
        raise ValueError(f"trainable_stages must be in [0, {top}] for this model (stages + stem), got {trainable_stages}")
    names = list(reversed(model.stage_names)) + ["conv1", "bn1"]
    train = names[:trainable_stages] + (["bn1"] if trainable_stages == top else [])
    for name, param in model.named_parameters():
        param.requires_grad_(any(name.startswith(prefix + ".") for prefix in train))


class FPNBackbone(nn.Module):
    """Backbone + torchvision FeaturePyramidNetwork; drop-in for torchvision's ``BackboneWithFPN``.

    Returns an OrderedDict ``{"0": P_first, ..., "pool": ...}`` with ``out_channels``
    channels each (the names torchvision's detectors and ``MultiScaleRoIAlign`` expect).
    """

    def __init__(
        self,
        body: Backbone,
        *,
        out_channels: int = 256,
        extra_blocks: ExtraFPNBlock | None = None,
    ) -> None:
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(
            in_channels_list=list(body.out_channels),
            out_channels=out_channels,
            extra_blocks=LastLevelMaxPool() if extra_blocks is None else extra_blocks,
        )
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> "OrderedDict[str, Tensor]":
        features = self.body(x)
        named = OrderedDict((str(i), f) for i, f in enumerate(features.values()))  # torchvision's names
        return self.fpn(named)


def fpn_backbone(
    name_or_model: str | ResNet,
    *,
    out_channels: int = 256,
    trainable_stages: int = 3,
    out_stages: Sequence[str] | None = None,
    weights: str | os.PathLike[str] | None = None,
    frozen_bn: bool = True,
    extra_blocks: ExtraFPNBlock | None = None,
) -> FPNBackbone:
    """A ResNet + FPN for torchvision's detectors (FasterRCNN, MaskRCNN, RetinaNet, ...).

    ``name_or_model``: a registered name (built without a head) or a model.
    ``weights``: a .safetensors/.pth state dict loaded into a named model (the head is dropped).
    ``trainable_stages``: how many stages, from the top, keep learning (torchvision's
    ``trainable_layers``; stages + 1 trains the stem as well). ``frozen_bn`` swaps BatchNorm2d
    for FrozenBatchNorm2d, as torchvision does for small detection batches.
    """
    if isinstance(name_or_model, str):
        model = create_model(name_or_model, num_classes=0)
        if weights is not None:
            load_pretrained(model, weights, drop_head=True)
    else:
        if weights is not None:
            raise ValueError("weights= is for a model given by name; load weights into your model before passing it")
        model = name_or_model
    if frozen_bn:
        freeze_batchnorm(model)
    set_trainable_stages(model, trainable_stages)
    return FPNBackbone(Backbone(model, out_stages=out_stages), out_channels=out_channels, extra_blocks=extra_blocks)


__all__ = ["Backbone", "FPNBackbone", "fpn_backbone", "freeze_batchnorm", "set_trainable_stages"]
