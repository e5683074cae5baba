"""Published weights that fit our models exactly, by name: ``resnet50.IMAGENET1K_V2``.

The table is data, one entry per file, copied from torchvision 0.29's ``models/resnet.py``
(URL, evaluation transform, published ImageNet-1K accuracy): our ImageNet models keep
torchvision's state-dict keys, so these files load with ``strict=True``. Each file name holds
the first hex digits of the file's SHA-256 (torch.hub's convention), checked after every
download. ``DEFAULT`` is the entry torchvision calls default (the best one).

timm's ResNet weights are not listed: they live on the Hugging Face hub under names without a
hash, so a download could not be verified against anything published next to the name.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")  # torch.hub's HASH_REGEX, at least 6 digits


@dataclass(frozen=True)
class PretrainedWeights:
    """One published weights file for one of our models."""

    model: str  # a registered model name
    tag: str  # IMAGENET1K_V1 …
    url: str
    labels: str  # the class names' set (see resnets.models.labels)
    num_classes: int
    resize: int  # evaluation: shorter side resized to this (bilinear) …
    crop: int  # … then the centre crop of this side
    top1: float  # published accuracy (%) on the evaluation set
    top5: float
    source: str  # who published it
    recipe: str  # how it was trained (a link)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    variant: str = "v1.5"  # the model options the weights need
    shortcut: str = "B"

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str:
        """The SHA-256 prefix in the file name (torch.hub's convention)."""
        return hash_prefix_of(self.filename)

    @property
    def crop_fraction(self) -> float:
        return self.crop / self.resize


def hash_prefix_of(filename: str) -> str:
    """``resnet50-11ad3fa6.pth`` -> ``11ad3fa6``; a name without one is an error."""
    found = _HASH_IN_NAME.search(filename)
    if found is None:
        raise ValueError(
            f"the file name {filename!r} holds no SHA-256 prefix (NAME-<hex>.EXT); "
            "a download could not be verified"
        )
    return found.group(1)


_TV = "https://download.pytorch.org/models/"
_V1 = "https://github.com/pytorch/vision/tree/main/references/classification#resnet"
_V1X = "https://github.com/pytorch/vision/tree/main/references/classification#resnext"
_V1W = "https://github.com/pytorch/vision/pull/912#issue-445437439"
_V2 = "https://github.com/pytorch/vision/issues/3995#new-recipe"
_V2F = "https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres"
_V2_50 = "https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621"

# (model, tag, file, resize, crop, acc@1, acc@5, recipe): torchvision's ImageNet-1K weights
_TORCHVISION: tuple[tuple[str, str, str, int, int, float, float, str], ...] = (
    ("resnet18", "IMAGENET1K_V1", "resnet18-f37072fd.pth", 256, 224, 69.758, 89.078, _V1),
    ("resnet34", "IMAGENET1K_V1", "resnet34-b627a593.pth", 256, 224, 73.314, 91.42, _V1),
    ("resnet50", "IMAGENET1K_V1", "resnet50-0676ba61.pth", 256, 224, 76.13, 92.862, _V1),
    ("resnet50", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 232, 224, 80.858, 95.434, _V2_50),
    ("resnet101", "IMAGENET1K_V1", "resnet101-63fe2227.pth", 256, 224, 77.374, 93.546, _V1),
    ("resnet101", "IMAGENET1K_V2", "resnet101-cd907fc2.pth", 232, 224, 81.886, 95.78, _V2),
    ("resnet152", "IMAGENET1K_V1", "resnet152-394f9c45.pth", 256, 224, 78.312, 94.046, _V1),
    ("resnet152", "IMAGENET1K_V2", "resnet152-f82ba261.pth", 232, 224, 82.284, 96.002, _V2),
    ("resnext50_32x4d", "IMAGENET1K_V1", "resnext50_32x4d-7cdf4587.pth", 256, 224, 77.618, 93.698, _V1X),
    ("resnext50_32x4d", "IMAGENET1K_V2", "resnext50_32x4d-1a0047aa.pth", 232, 224, 81.198, 95.34, _V2),
    ("resnext101_32x8d", "IMAGENET1K_V1", "resnext101_32x8d-8ba56ff5.pth", 256, 224, 79.312, 94.526, _V1X),
    ("resnext101_32x8d", "IMAGENET1K_V2", "resnext101_32x8d-110c445d.pth", 232, 224, 82.834, 96.228, _V2F),
    ("wide_resnet50_2", "IMAGENET1K_V1", "wide_resnet50_2-95faca4d.pth", 256, 224, 78.468, 94.086, _V1W),
    ("wide_resnet50_2", "IMAGENET1K_V2", "wide_resnet50_2-9ba9bcbe.pth", 232, 224, 81.602, 95.758, _V2F),
    ("wide_resnet101_2", "IMAGENET1K_V1", "wide_resnet101_2-32ee1156.pth", 256, 224, 78.848, 94.284, _V1W),
    ("wide_resnet101_2", "IMAGENET1K_V2", "wide_resnet101_2-d733dc28.pth", 232, 224, 82.51, 96.02, _V2),
)

_WEIGHTS: dict[str, PretrainedWeights] = {}
_DEFAULTS: dict[str, str] = {}  # model -> tag


def register_weights(entry: PretrainedWeights, *, default: bool = False) -> None:
    """Add a weights file to the table (``default=True``: what ``weights="DEFAULT"`` picks)."""
    if entry.name in _WEIGHTS:
        raise ValueError(f"weights {entry.name!r} are already registered")
    hash_prefix_of(entry.filename)  # refuse a name that could not be verified
    _WEIGHTS[entry.name] = entry
    if default or entry.model not in _DEFAULTS:
        _DEFAULTS[entry.model] = entry.tag


def unregister_weights(name: str) -> None:
    """Remove an entry added with :func:`register_weights` (and its default, if it was one)."""
    entry = _WEIGHTS.pop(name)
    if _DEFAULTS.get(entry.model) == entry.tag:
        others = [e.tag for e in _WEIGHTS.values() if e.model == entry.model]
        if others:
            _DEFAULTS[entry.model] = others[-1]
        else:
            del _DEFAULTS[entry.model]


def list_weights(pattern: str = "*") -> list[PretrainedWeights]:
    """Entries whose name (``model.TAG``) matches a shell-style pattern."""
    return [e for n, e in _WEIGHTS.items() if fnmatch.fnmatch(n, pattern) or fnmatch.fnmatch(e.model, pattern)]


def default_tag(model: str) -> str | None:
    return _DEFAULTS.get(model)


def get_weights(model: str, tag: str) -> PretrainedWeights:
    """The entry for ``model`` and ``tag`` (``"DEFAULT"`` for the default one)."""
    if tag == "DEFAULT":
        found = _DEFAULTS.get(model)
        if found is None:
            raise ValueError(
                f"no published weights for {model}; `resnets weights` lists the models that have some "
                "(or start from a file: resnets.load_pretrained(model, PATH))"
            )
        tag = found
    entry = _WEIGHTS.get(f"{model}.{tag}")
    if entry is None:
        tags = [e.tag for e in _WEIGHTS.values() if e.model == model]
        known = f"{model} has {', '.join(tags + ['DEFAULT'])}" if tags else f"{model} has none"
        raise ValueError(f"unknown weights {tag!r} for {model} ({known}); `resnets weights {model}` lists them")
    return entry


def find_weights(name: str) -> PretrainedWeights | None:
    """``"resnet50.IMAGENET1K_V2"`` (or ``"resnet50.DEFAULT"``) -> its entry; None when the text
    does not name a model with published weights (it may be a path)."""
    model, sep, tag = name.partition(".")
    if not sep or model not in _DEFAULTS or not re.fullmatch(r"[A-Z0-9_]+", tag):
        return None
    return get_weights(model, tag)


def _register_table() -> None:
    for model, tag, filename, resize, crop, top1, top5, recipe in _TORCHVISION:
        register_weights(
            PretrainedWeights(
                model=model, tag=tag, url=_TV + filename, labels="imagenet-1k", num_classes=1000,
                resize=resize, crop=crop, top1=top1, top5=top5, source="torchvision", recipe=recipe,
            ),
            default=tag == "IMAGENET1K_V2",
        )


_register_table()
