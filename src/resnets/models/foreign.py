"""Checkpoints of other ResNet code, read into our models: formats, key maps, architecture.

A format is recognised from its keys and tensor shapes; its keys are renamed to ours; the
network (depth, class count, input channels, shortcut option) is the registered model whose
state dict has exactly those keys and shapes. What tensors cannot say, the format says: where
option A puts its zero channels, and how the source's own training script normalised inputs.

Formats (their published definitions were read for the key names and the shortcut):

* ``torchvision``: torchvision's ``models/resnet.py`` (and timm's ``resnet*`` that equal it):
  our keys already; ImageNet stem, projection (B) shortcuts.
* ``akamaster``: akamaster/pytorch_resnet_cifar10 (``resnet.py``): ``.th`` files with the state
  dict under ``state_dict``, keys prefixed ``module.``, head ``linear``, option-A shortcuts as a
  ``LambdaLayer`` that pads half of the new channels before the old ones and half after
  (``pad_placement="split"``); option B as ``shortcut.0/1``. Its ``trainer.py`` normalises with
  the ImageNet mean/std. CIFAR-10.
* ``chenyaofo``: chenyaofo/pytorch-cifar-models (``pytorch_cifar_models/resnet.py``), published
  for torch.hub: our keys, 3x3 stem of 16, 1x1-conv+BN (B) shortcuts. Its training code
  (chenyaofo/image-classification-codebase ``conf/cifar10.conf``/``cifar100.conf``) normalises
  with per-dataset means/stds, listed below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import Tensor

from resnets.models.pretrained import IMAGENET_MEAN, IMAGENET_STD
from resnets.models.registry import create_model, get_entry, list_models

_CIFAR10_CODEBASE = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
_CIFAR100_CODEBASE = ((0.5070, 0.4865, 0.4409), (0.2673, 0.2564, 0.2761))
_IMAGENET = (IMAGENET_MEAN, IMAGENET_STD)


@dataclass(frozen=True)
class Normalisation:
    """What the source's evaluation fed the network (per class count: the dataset)."""

    labels: str  # a label set of resnets.models.labels
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    crop_fraction: float = 1.0


@dataclass(frozen=True)
class ForeignFormat:
    name: str
    description: str
    family: str  # imagenet | cifar: which registered models can hold it
    detect: Callable[[Mapping[str, Tensor]], bool]
    rename: Callable[[str], str]
    shortcuts: tuple[str, ...]  # shortcut options the source code has
    pad_placement: str  # where its option A puts the zero channels
    normalisation: dict[int, Normalisation] = field(default_factory=dict)  # by class count


def _stem_kernel(state: Mapping[str, Tensor]) -> int | None:
    w = state.get("conv1.weight")
    return int(w.shape[-1]) if w is not None and w.ndim == 4 else None


def _is_akamaster(state: Mapping[str, Tensor]) -> bool:
    return "linear.weight" in state and _stem_kernel(state) == 3 and "layer3.0.conv1.weight" in state


def _is_chenyaofo(state: Mapping[str, Tensor]) -> bool:
    return (_stem_kernel(state) == 3 and "fc.weight" in state and "layer2.0.downsample.0.weight" in state
            and "layer4.0.conv1.weight" not in state)


def _is_torchvision(state: Mapping[str, Tensor]) -> bool:
    return _stem_kernel(state) == 7 and "layer4.0.conv1.weight" in state


def _akamaster_key(key: str) -> str:
    if key.startswith("linear."):
        return "fc." + key[len("linear."):]
    return key.replace(".shortcut.", ".downsample.")


FORMATS: dict[str, ForeignFormat] = {
    f.name: f
    for f in (
        ForeignFormat(
            name="akamaster",
            description="akamaster/pytorch_resnet_cifar10 .th (linear head, option A split padding)",
            family="cifar", detect=_is_akamaster, rename=_akamaster_key, shortcuts=("A", "B"), pad_placement="split",
            normalisation={10: Normalisation("cifar10", IMAGENET_MEAN, IMAGENET_STD, 32)},
        ),
        ForeignFormat(
            name="chenyaofo",
            description="chenyaofo/pytorch-cifar-models torch.hub .pt (CIFAR-10/100, B shortcuts)",
            family="cifar", detect=_is_chenyaofo, rename=lambda k: k, shortcuts=("B",), pad_placement="after",
            normalisation={10: Normalisation("cifar10", *_CIFAR10_CODEBASE, 32),
                           100: Normalisation("cifar100", *_CIFAR100_CODEBASE, 32)},
        ),
        ForeignFormat(
            name="torchvision",
            description="torchvision (or timm) ImageNet ResNet/ResNeXt/Wide ResNet state dict",
            family="imagenet", detect=_is_torchvision, rename=lambda k: k, shortcuts=("B",), pad_placement="after",
            normalisation={1000: Normalisation("imagenet-1k", *_IMAGENET, 224, 224 / 256)},
        ),
    )
}


@dataclass
class Converted:
    """A foreign state dict in our keys, with the model that holds it exactly."""

    format: ForeignFormat
    state: dict[str, Tensor]
    model: str
    options: dict[str, object]  # create_model options: num_classes, in_chans, shortcut, pad_placement

    @property
    def normalisation(self) -> Normalisation | None:
        return self.format.normalisation.get(int(self.options["num_classes"]))  # type: ignore[arg-type]


def _summary(state: Mapping[str, Tensor]) -> str:
    prefixes = sorted({k.split(".", 1)[0] for k in state})
    shown = ", ".join(prefixes[:8]) + (" …" if len(prefixes) > 8 else "")
    return f"{len(state)} tensors, key prefixes {shown}"


def known_formats() -> str:
    return "; ".join(f"{f.name}: {f.description}" for f in FORMATS.values())


def detect_format(state: Mapping[str, Tensor]) -> ForeignFormat | None:
    """The first format whose keys and shapes fit ``state`` (None: none does)."""
    return next((f for f in FORMATS.values() if f.detect(state)), None)


_COUNTER = "num_batches_tracked"


def _fits(model_state: Mapping[str, Tensor], state: Mapping[str, Tensor]) -> bool:
    """Same keys and shapes (BN step counters, which old files lack, aside)."""
    keys = {k for k in model_state if not k.endswith(_COUNTER)}
    if keys != {k for k in state if not k.endswith(_COUNTER)}:
        return False
    return all(model_state[k].shape == state[k].shape for k in keys)


def _architecture(fmt: ForeignFormat, state: dict[str, Tensor]) -> tuple[str, dict[str, object], list[str]]:
    """The registered model (name, options) holding ``state`` exactly, and its BN counter keys."""
    head = state.get("fc.weight")
    stem = state["conv1.weight"]
    options: dict[str, object] = {"num_classes": int(head.shape[0]) if head is not None else 0,
                                  "in_chans": int(stem.shape[1])}
    has_projection = any(".downsample." in k for k in state)
    shortcuts = [s for s in fmt.shortcuts if (s != "A") == has_projection]
    names = [n for n in list_models() if get_entry(n).family == fmt.family
             and get_entry(n).kind in ("resnet", "wide", "resnext")]
    for shortcut in shortcuts:
        extra = {"shortcut": shortcut, "pad_placement": fmt.pad_placement} if shortcut == "A" else {"shortcut": shortcut}
        for name in names:
            with torch.device("meta"):  # shapes only
                candidate = create_model(name, **options, **extra).state_dict()  # type: ignore[arg-type]
            if _fits(candidate, state):
                return name, {**options, **extra}, [k for k in candidate if k.endswith(_COUNTER)]
    units = len({k.split(".")[0] + "." + k.split(".")[1] for k in state if k.startswith("layer")})
    raise ValueError(
        f"the {fmt.name} checkpoint ({_summary(state)}, {units} residual units) fits none of our "
        f"{fmt.family} models; is it a ResNet of another depth or width than those of `resnets models`?"
    )


def convert_state(state: Mapping[str, Tensor], *, from_format: str | None = None) -> Converted:
    """Rename a foreign state dict to our keys and find the model that holds it exactly."""
    if from_format is not None:
        if from_format not in FORMATS:
            raise ValueError(f"unknown format {from_format!r}; known formats: {', '.join(FORMATS)}")
        fmt = FORMATS[from_format]
    else:
        found = detect_format(state)
        if found is None:
            raise ValueError(
                f"the checkpoint fits no known format ({_summary(state)}); known formats: {known_formats()}. "
                "Name one with --from if the keys are renamed"
            )
        fmt = found
    ours = {fmt.rename(k): v for k, v in state.items()}
    name, options, counters = _architecture(fmt, ours)
    for key in counters:  # files from torch < 0.4.1 have no BN step counters
        ours.setdefault(key, torch.zeros((), dtype=torch.long))
    return Converted(format=fmt, state=ours, model=name, options=options)
