"""Small models of every family, with trained-looking BatchNorm statistics."""

from __future__ import annotations

import copy
import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from resnets import create_model
from resnets.models import ResNet

REPO = Path(__file__).resolve().parents[2]


def small_bottleneck(*, preact: bool = False, groups: int = 1) -> ResNet:
    """A one-unit-per-stage bottleneck net (ImageNet stem), fast enough for every test."""
    return ResNet(block="preact_bottleneck" if preact else "bottleneck", layers=[1, 1, 1, 1], widths=[8, 16, 16, 32],
                  stem="imagenet", stem_width=8, num_classes=5, groups=groups, width_per_group=64 // groups * groups)


def small_preact_bottleneck_cifar() -> ResNet:
    """Pre-activation bottleneck on the CIFAR stem (a ResNet-164 with one unit per stage)."""
    return ResNet(block="preact_bottleneck", layers=[1, 1, 1], widths=[16, 32, 64], stem="cifar", stem_width=16,
                  num_classes=10, shortcut="B", default_input_size=(3, 32, 32))


# name: (builder, image side)
FAMILIES: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "basic_resnet18": (lambda: create_model("resnet18", num_classes=7), 32),
    "bottleneck": (small_bottleneck, 32),
    "bottleneck_grouped": (lambda: small_bottleneck(groups=2), 32),
    "preact_resnet20": (lambda: create_model("preact_resnet20"), 16),
    "preact_bottleneck_cifar": (small_preact_bottleneck_cifar, 16),
    "preact_bottleneck_imagenet": (lambda: small_bottleneck(preact=True), 32),
    "cifar_option_A": (lambda: create_model("resnet20", shortcut="A"), 16),
    "cifar_option_B": (lambda: create_model("resnet20", shortcut="B"), 16),
    "cifar_option_C": (lambda: create_model("resnet20", shortcut="C"), 16),
    "plain20": (lambda: create_model("plain20"), 16),
}


@torch.no_grad()
def calibrate(model: nn.Module, side: int, *, seed: int = 0) -> nn.Module:
    """Give every BN non-trivial affine parameters and running statistics (as after training); eval mode."""
    g = torch.Generator().manual_seed(seed)
    in_chans = int(getattr(model, "in_chans", 3))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
            m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.bias.copy_(0.6 * torch.rand(m.num_features, generator=g) - 0.3)
    model.train()
    model(torch.randn(16, in_chans, side, side, generator=g))
    return model.eval()


@functools.cache
def _built(family: str) -> tuple[nn.Module, int]:
    torch.manual_seed(0)
    builder, side = FAMILIES[family]
    return calibrate(builder(), side), side


def build(family: str) -> tuple[nn.Module, int]:
    """A calibrated model of ``family`` (a fresh copy each call) and its test image side."""
    model, side = _built(family)
    return copy.deepcopy(model), side


def load_example(name: str) -> ModuleType:
    """Import examples/<name>.py as a module."""
    path = REPO / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_train_checkpoint(run_dir: Path) -> tuple[Path, nn.Module]:
    """A checkpoint written by the train engine's writer: a 1-channel, 3-class resnet20 (option B), 16 px."""
    from resnets.io.checkpoint import json_meta, save_checkpoint
    from resnets.train.config import ModelConfig
    from resnets.train.network import options_json

    torch.manual_seed(0)
    model = calibrate(create_model("resnet20", num_classes=3, in_chans=1, shortcut="B"), 16)
    meta = json_meta(model="resnet20", model_options=options_json(ModelConfig(name="resnet20", shortcut="B")),
                     num_classes=3, in_chans=1, classes=["a", "b", "c"], mean=[0.5], std=[0.25], image_size=16,
                     crop_fraction=1.0)
    save_checkpoint(run_dir, "best", module=model, metadata={**meta, "step": "7"})
    return run_dir, model
