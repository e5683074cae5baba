"""The network each of our models is measured against: torchvision's twin, or a plain CIFAR ResNet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torchvision
from torch import nn

from resnets.bench.reference_cifar import ReferenceCifarResNet

TORCHVISION_TWINS: tuple[str, ...] = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "wide_resnet50_2", "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d",
)
CIFAR_DEPTHS: dict[str, int] = {"resnet20": 20, "resnet32": 32, "resnet44": 44, "resnet56": 56, "resnet110": 110}


@dataclass(frozen=True)
class Twin:
    build: Callable[[int, int], nn.Module]  # (num_classes, in_chans) -> an untrained module
    label: str  # short name, e.g. "torchvision.models.resnet50"
    description: str
    same_keys: bool  # state dicts share keys with ours (weights can be copied across)


def _torchvision(name: str) -> Twin:
    def build(num_classes: int, in_chans: int) -> nn.Module:
        model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes)
        if in_chans != 3:  # torchvision's stem is fixed to RGB: swap it as a user would
            model.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        return model

    label = f"torchvision.models.{name}"
    return Twin(build, label, f"{label} (torchvision {torchvision.__version__})", same_keys=True)


def _cifar(depth: int) -> Twin:
    return Twin(
        lambda num_classes, in_chans: ReferenceCifarResNet(depth, num_classes=num_classes, in_chans=in_chans),
        f"ReferenceCifarResNet(depth={depth})",
        f"resnets.bench.reference_cifar.ReferenceCifarResNet(depth={depth}): a plain-PyTorch CIFAR ResNet "
        "(option A via a LambdaLayer), as public CIFAR trainers write it",
        same_keys=False,
    )


TWINS: dict[str, Twin] = {
    **{name: _torchvision(name) for name in TORCHVISION_TWINS},
    **{name: _cifar(depth) for name, depth in CIFAR_DEPTHS.items()},
}


def get_twin(name: str) -> Twin:
    if name not in TWINS:
        raise ValueError(
            f"no reference network to benchmark {name!r} against; choose one of {sorted(TWINS)} "
            "(torchvision's ImageNet ResNets, or the CIFAR nets against a plain-PyTorch reference)"
        )
    return TWINS[name]


__all__ = ["CIFAR_DEPTHS", "TORCHVISION_TWINS", "TWINS", "Twin", "get_twin"]
