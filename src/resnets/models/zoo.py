"""The named architectures of the papers, registered from small tables."""

from __future__ import annotations

import re
from functools import partial

from resnets.models.registry import ModelEntry, ModelOptions, register_family, register_model
from resnets.models.resnet import ResNet

IMAGENET_DEPTHS: dict[int, tuple[str, list[int]]] = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]),
    152: ("bottleneck", [3, 8, 36, 3]),
}
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)  # 6n + 2, basic units
PREACT_CIFAR_DEPTHS = (20, 32, 44, 56, 110)
PREACT_CIFAR_BOTTLENECK_DEPTHS = (164, 1001)  # 9n + 2, bottleneck units
WIDE_AND_RESNEXT: dict[str, tuple[list[int], int, int]] = {  # name: (layers, groups, width_per_group)
    "wide_resnet50_2": ([3, 4, 6, 3], 1, 128),
    "wide_resnet101_2": ([3, 4, 23, 3], 1, 128),
    "resnext50_32x4d": ([3, 4, 6, 3], 32, 4),
    "resnext101_32x8d": ([3, 4, 23, 3], 32, 8),
}


def imagenet_net(
    o: ModelOptions, *, block: str, layers: list[int], plain: bool = False, groups: int = 1, width_per_group: int = 64
) -> ResNet:
    """7x7/2 stem, max-pool, four stages of 64/128/256/512 (x4 for bottlenecks), 224x224 input."""
    return ResNet(
        block=block,
        layers=layers,
        widths=[64, 128, 256, 512],
        stem="imagenet",
        stem_width=64,
        num_classes=1000 if o.num_classes is None else o.num_classes,
        in_chans=o.in_chans,
        shortcut="none" if plain else (o.shortcut or "B"),
        pad_placement=o.pad_placement,
        groups=groups,
        width_per_group=width_per_group,
        stride_in_1x1=o.variant == "v1",
        zero_init_last=o.zero_init_last,
        drop_path_rate=o.drop_path_rate,
        output_stride=o.output_stride,
        default_input_size=(3, 224, 224),
        norm=o.norm,
        branch_gate=o.branch_gate,
        fixup=o.fixup,
    )


def cifar_net(o: ModelOptions, *, block: str, units_per_stage: int, plain: bool = False, default_shortcut: str = "A") -> ResNet:
    """Paper section 4.2: 3x3 stem of 16, three stages of 16/32/64 on 32x32/16x16/8x8 maps."""
    return ResNet(
        block=block,
        layers=[units_per_stage] * 3,
        widths=[16, 32, 64],
        stem="cifar",
        stem_width=16,
        num_classes=10 if o.num_classes is None else o.num_classes,
        in_chans=o.in_chans,
        shortcut="none" if plain else (o.shortcut or default_shortcut),
        pad_placement=o.pad_placement,
        stride_in_1x1=o.variant == "v1",
        zero_init_last=o.zero_init_last,
        drop_path_rate=o.drop_path_rate,
        output_stride=o.output_stride,
        default_input_size=(3, 32, 32),
        norm=o.norm,
        branch_gate=o.branch_gate,
        fixup=o.fixup,
    )


def _register_all() -> None:
    imagenet = [(d, b, layers, f"{b}, stages {layers}") for d, (b, layers) in IMAGENET_DEPTHS.items()]
    for depth, block, layers, spec in imagenet:
        register_model(f"resnet{depth}", partial(imagenet_net, block=block, layers=layers),
                       family="imagenet", kind="resnet", description=f"ImageNet ResNet-{depth} ({spec})")
    for name, (layers, groups, wpg) in WIDE_AND_RESNEXT.items():
        kind = "wide" if name.startswith("wide") else "resnext"
        register_model(name, partial(imagenet_net, block="bottleneck", layers=layers, groups=groups, width_per_group=wpg),
                       family="imagenet", kind=kind, description=f"{kind} bottleneck, groups={groups}, width/group={wpg}")
    for depth in CIFAR_DEPTHS:
        n = (depth - 2) // 6
        register_model(f"resnet{depth}", partial(cifar_net, block="basic", units_per_stage=n),
                       family="cifar", kind="resnet", description=f"CIFAR ResNet-{depth} (6n+2, n={n})")
    for depth, block, layers, spec in imagenet:
        register_model(f"preact_resnet{depth}", partial(imagenet_net, block=f"preact_{block}", layers=layers),
                       family="imagenet", kind="preact", description=f"pre-activation ResNet-{depth} ({spec})")
    for depth in PREACT_CIFAR_DEPTHS:
        n = (depth - 2) // 6
        register_model(f"preact_resnet{depth}", partial(cifar_net, block="preact_basic", units_per_stage=n, default_shortcut="B"),
                       family="cifar", kind="preact", description=f"pre-activation CIFAR ResNet-{depth} (6n+2, n={n})")
    for depth in PREACT_CIFAR_BOTTLENECK_DEPTHS:
        n = (depth - 2) // 9
        builder = partial(cifar_net, block="preact_bottleneck", units_per_stage=n, default_shortcut="B")
        register_model(f"preact_resnet{depth}", builder, family="cifar", kind="preact",
                       description=f"pre-activation CIFAR ResNet-{depth} (bottleneck, 9n+2, n={n})")
    for depth, block, layers, _ in imagenet:
        register_model(f"plain{depth}", partial(imagenet_net, block=block, layers=layers, plain=True),
                       family="imagenet", kind="plain", description=f"plain twin of ResNet-{depth}, no shortcuts")
    for depth in CIFAR_DEPTHS:
        n = (depth - 2) // 6
        register_model(f"plain{depth}", partial(cifar_net, block="basic", units_per_stage=n, plain=True),
                       family="cifar", kind="plain", description=f"plain twin of CIFAR ResNet-{depth}")


CIFAR_ANY_DEPTH = re.compile(r"cifar_(resnet|plain)(\d+)")  # the studies' ladders: any depth 6n+2


def cifar_any_depth(name: str) -> ModelEntry | None:
    """``cifar_resnet<d>`` (option A shortcuts) or ``cifar_plain<d>`` (none) for any depth d = 6n+2."""
    match = CIFAR_ANY_DEPTH.fullmatch(name)
    if match is None:
        return None
    kind, depth = match[1], int(match[2])
    if depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(f"{name}: depth {depth} is not of the form 6n+2 with n >= 1; use e.g. cifar_{kind}8 or cifar_{kind}20")
    n = (depth - 2) // 6
    return ModelEntry(name=name, builder=partial(cifar_net, block="basic", units_per_stage=n, plain=kind == "plain"),
                      family="cifar", kind=kind, description=f"CIFAR {kind} net of {depth} layers (6n+2, n={n})")


_register_all()
register_family(cifar_any_depth)
