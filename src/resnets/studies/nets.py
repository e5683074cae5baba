"""The networks of the studies: the paper's CIFAR family (6n+2 layers) at any depth,
residual (option A shortcuts) or plain (no shortcuts), sized for the dataset."""

from __future__ import annotations

from dataclasses import dataclass

from resnets.models import ResNet, create_model

KINDS: dict[str, str] = {"plain": "none", "residual": "A"}  # kind -> shortcut option


def check_depth(depth: int) -> int:
    """Units per stage ``n`` of a depth 6n+2 (8, 14, 20, 32, 44, 56, 110 ...)."""
    if depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(
            f"depth {depth} is not of the form 6n+2 with n >= 1; use e.g. 8, 14, 20, 32, 44, 56 or 110"
        )
    return (depth - 2) // 6


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"network kind {kind!r} is not one of {sorted(KINDS)}")
    return kind


def model_name(*, depth: int, kind: str) -> str:
    """The registry's name of the paper's CIFAR network of ``depth`` layers and ``kind``."""
    check_depth(depth)
    return f"cifar_{'plain' if check_kind(kind) == 'plain' else 'resnet'}{depth}"


def build_net(
    *, depth: int, kind: str, num_classes: int, in_chans: int, image_size: int, zero_init_last: bool = False
) -> ResNet:
    """The paper's CIFAR network of ``depth`` layers (3x3 stem of 16, three stages of 16/32/64),
    from the registry, with ``image_size`` as its native input size."""
    net = create_model(model_name(depth=depth, kind=kind), num_classes=num_classes, in_chans=in_chans,
                       zero_init_last=zero_init_last)
    net.default_input_size = (in_chans, image_size, image_size)
    return net


@dataclass(frozen=True)
class NetSpec:
    """One network of a study: plain or residual, its depth and its seed."""

    kind: str
    depth: int
    seed: int = 0

    def __post_init__(self) -> None:
        check_kind(self.kind)
        check_depth(self.depth)

    @property
    def key(self) -> str:
        """The file-name stem of its result, e.g. ``plain-20-s0``."""
        return f"{self.kind}-{self.depth}-s{self.seed}"

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.depth}"


def ladder(depths: list[int], *, seeds: list[int], kinds: tuple[str, ...] = ("plain", "residual")) -> list[NetSpec]:
    """Every (kind, depth, seed), deepest first (the longest jobs start first in a pool)."""
    for d in depths:
        check_depth(d)
    return [NetSpec(kind=k, depth=d, seed=s) for d in sorted(set(depths), reverse=True) for k in kinds for s in seeds]
