"""The model registry: ``register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, overload

from resnets.models.blocks import NORMS, PAD_PLACEMENTS
from resnets.models.features import FeatureNet
from resnets.models.resnet import ResNet


@dataclass(frozen=True)
class ModelOptions:
    """Options every model accepts (keyword-only in ``create_model``).

    num_classes: outputs of the head (None: the family's default, 1000 or 10; 0: no head).
    in_chans: input channels (1 for grayscale).
    shortcut: "A" zero-pad, "B" project where shapes change, "C" project everywhere
        (None: the family's default; plain nets have none).
    pad_placement: where option A puts its zero channels: "after" the old ones (our default,
        as fb.resnet.torch) or "split" half before and half after (as the common PyTorch CIFAR
        code, akamaster/pytorch_resnet_cifar10, whose weights need it).
    variant: "v1.5" (stride on the bottleneck's 3x3, torchvision) or "v1" (on the first 1x1, the paper).
    zero_init_last: zero the last BN (post-activation) or conv (pre-activation) of each residual branch.
    drop_path_rate: stochastic depth, rising linearly to this rate over the units.
    output_stride: total stride of the last feature map (8/16/32 for ImageNet nets), by dilation.
    grad_checkpointing: recompute activations in backward to bound memory.
    norm: "batch" (BatchNorm after every convolution) or "none" (no normalisation at all).
    branch_gate: SkipInit (De & Smith 2020): each residual branch times one learned scalar,
        initialised to 0, so every unit starts as its shortcut.
    fixup: Fixup (Zhang et al. 2019), with norm="none": scalar biases and multipliers, each branch's
        last conv and the classifier at zero, the other branch convs scaled by L^-1/2.
    """

    num_classes: int | None = None
    in_chans: int = 3
    shortcut: str | None = None
    pad_placement: str = "after"
    variant: str = "v1.5"
    zero_init_last: bool = False
    drop_path_rate: float = 0.0
    output_stride: int | None = None
    grad_checkpointing: bool = False
    norm: str = "batch"
    branch_gate: bool = False
    fixup: bool = False


_TYPES: dict[str, tuple[type, ...]] = {
    "num_classes": (int, type(None)),
    "in_chans": (int,),
    "shortcut": (str, type(None)),
    "pad_placement": (str,),
    "variant": (str,),
    "zero_init_last": (bool,),
    "drop_path_rate": (float, int),
    "output_stride": (int, type(None)),
    "grad_checkpointing": (bool,),
    "norm": (str,),
    "branch_gate": (bool,),
    "fixup": (bool,),
}
VARIANTS = ("v1.5", "v1")

Builder = Callable[[ModelOptions], ResNet]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    family: str  # imagenet | cifar
    kind: str  # resnet | preact | plain | wide | resnext
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, builder: Builder, *, family: str, kind: str, description: str) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelEntry(name=name, builder=builder, family=family, kind=kind, description=description)


def _close(word: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(map(repr, near))}?" if near else ""


_FAMILIES: list[Callable[[str], ModelEntry | None]] = []


def register_family(resolve: Callable[[str], ModelEntry | None]) -> None:
    """A family of names built on demand and not listed (e.g. the CIFAR net of any depth 6n+2):
    ``resolve(name)`` returns its entry, or None when the name is not of the family."""
    _FAMILIES.append(resolve)


def get_entry(name: str) -> ModelEntry:
    if name in _REGISTRY:
        return _REGISTRY[name]
    for resolve in _FAMILIES:
        entry = resolve(name)
        if entry is not None:
            return entry
    raise ValueError(
        f"unknown model {name!r}{_close(name, sorted(_REGISTRY))} (`resnets models` lists them all)"
    )


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, in registration order."""
    return [n for n in _REGISTRY if fnmatch.fnmatch(n, pattern)]


def make_options(**options: object) -> ModelOptions:
    """Validate option names and types; the message names close matches."""
    fields = [f.name for f in dataclasses.fields(ModelOptions)]
    for key, value in options.items():
        if key not in fields:
            raise ValueError(f"unknown model option {key!r}{_close(key, fields)}; options are {', '.join(fields)}")
        allowed = _TYPES[key]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
            raise ValueError(f"model option {key}={value!r} must be {names}")
    opts = ModelOptions(**options)  # type: ignore[arg-type]
    if opts.pad_placement not in PAD_PLACEMENTS:
        raise ValueError(
            f"pad_placement={opts.pad_placement!r} is not known; choose 'after' (zero channels appended) "
            "or 'split' (half before, half after)"
        )
    if opts.norm not in NORMS:
        raise ValueError(f"norm={opts.norm!r} is not known; choose 'batch' (BatchNorm) or 'none' (no normalisation)")
    if opts.variant not in VARIANTS:
        raise ValueError(f"variant={opts.variant!r} is not known; choose 'v1.5' (torchvision) or 'v1' (the paper)")
    return opts


@overload
def create_model(name: str, *, features_only: Literal[False] = False, out_indices: Sequence[int] | None = None,
                 weights: str | None = None, pretrained: bool = False, **options: object) -> ResNet: ...
@overload
def create_model(name: str, *, features_only: Literal[True], out_indices: Sequence[int] | None = None,
                 weights: str | None = None, pretrained: bool = False, **options: object) -> FeatureNet: ...
def create_model(name: str, *, features_only: bool = False, out_indices: Sequence[int] | None = None,
                 weights: str | None = None, pretrained: bool = False, **options: object) -> ResNet | FeatureNet:
    """Build a registered model: ``create_model("resnet20", num_classes=100, in_chans=1)``.

    ``features_only=True`` (as in timm) gives a :class:`FeatureNet` returning the feature maps at
    ``out_indices`` (default: all; 0 is the stem, i stage i) instead of logits.

    ``weights="IMAGENET1K_V2"`` (or ``"DEFAULT"``) loads published weights by name, fetched and
    verified once (see :mod:`resnets.models.hub`); ``pretrained=True`` means ``weights="DEFAULT"``.
    With weights, ``num_classes`` other than the weights' leaves a new head (fine-tuning) and
    ``in_chans`` other than 3 adapts the stem.
    """
    entry = get_entry(name)
    opts = make_options(**options)
    if entry.kind == "plain" and opts.shortcut not in (None, "none"):
        raise ValueError(f"{name} is a plain network without shortcuts; leave shortcut unset for it")
    if out_indices is not None and not features_only:
        raise ValueError("out_indices goes with features_only=True")
    if pretrained is not False and pretrained is not True:
        raise ValueError(f"pretrained={pretrained!r} must be True or False")
    if pretrained and weights is not None:
        raise ValueError(f"give weights={weights!r} or pretrained=True, not both (pretrained=True is weights='DEFAULT')")
    if not pretrained and weights is None:
        model = entry.builder(opts)
    else:
        model = _with_published_weights(entry, "DEFAULT" if pretrained else str(weights), opts)
    model.set_grad_checkpointing(opts.grad_checkpointing)
    if features_only:
        indices = range(len(model.stage_names) + 1) if out_indices is None else out_indices
        return FeatureNet(model, out_indices=indices)
    return model


def _with_published_weights(entry: ModelEntry, tag: str, opts: ModelOptions) -> ResNet:
    """The model with published weights: their class count unless ``num_classes`` asks for a new head."""
    from resnets.models.hub import fetch
    from resnets.models.pretrained import get_weights
    from resnets.models.weights import load_pretrained

    published = get_weights(entry.name, tag)
    shortcut = opts.shortcut or published.shortcut
    if opts.variant != published.variant or shortcut != published.shortcut:
        raise ValueError(
            f"{published.name} was trained with variant={published.variant!r}, shortcut={published.shortcut!r}; "
            f"leave variant and shortcut at those values to use it"
        )
    drop_head = opts.num_classes is not None and opts.num_classes != published.num_classes
    if opts.num_classes is None:
        opts = dataclasses.replace(opts, num_classes=published.num_classes)
    model = entry.builder(opts)
    load_pretrained(model, fetch(published.url), drop_head=drop_head)
    return model
