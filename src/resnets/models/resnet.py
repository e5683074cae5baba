"""The ResNet module: stem -> stages of residual units -> head.

One class serves every network of the papers: ImageNet nets (7x7/2 stem and
max-pool, four stages), CIFAR nets (3x3 stem, three stages of 16/32/64
channels), pre-activation nets (a final BN-ReLU before pooling) and the plain
twins (``shortcut="none"``), with or without normalisation (``norm="none"``, and
Fixup's or SkipInit's initialisation for training without it). Where it departs from the paper it says so:
bottleneck strides default to the 3x3 conv ("v1.5", as torchvision);
``stride_in_1x1=True`` gives the paper's v1.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from resnets.models.blocks import (
    BLOCKS,
    FIXUP_BLOCKS,
    NORMS,
    PAD_PLACEMENTS,
    SHORTCUTS,
    FixupBasicBlock,
    NormLayer,
    ScalarBias,
    Unit,
    count_weighted_layers,
    make_shortcut,
)

STEMS = ("imagenet", "cifar")


def _check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(map(repr, choices))}")


def _fixup_bias(channels: int) -> nn.Module:
    """Fixup's stem: a scalar bias where BN would be."""
    return ScalarBias()


def _check_branch_options(
    *, block: str, shortcut: str, norm: str, branch_gate: bool, fixup: bool, zero_init_last: bool
) -> None:
    """The options that shape the residual branch at initialisation, checked together."""
    plain = shortcut == "none"
    if branch_gate and plain:
        raise ValueError("branch_gate=True needs residual units: a plain network has no branch to gate "
                         "(its gate at zero would zero the network); use a residual model")
    if fixup and plain:
        raise ValueError("fixup=True needs residual units: a plain network has no branch to start at zero; "
                         "use a residual model")
    if fixup and norm != "none":
        raise ValueError(f"fixup=True is the initialisation of a network without normalisation, got norm={norm!r}; "
                         "add norm='none'")
    if fixup and block not in FIXUP_BLOCKS:
        raise ValueError(f"fixup=True is built for {', '.join(FIXUP_BLOCKS)} units, not {block!r}; "
                         "use a CIFAR ResNet or ResNet-18/34")
    if branch_gate and (fixup or zero_init_last):
        other = "fixup=True" if fixup else "zero_init_last=True"
        raise ValueError(f"branch_gate=True with {other} starts every branch at zero twice over, and each zero "
                         "blocks the other's gradient (the branches never train); choose one of them")


class ResNet(nn.Module):
    """A residual (or plain) network. Build it through ``resnets.create_model``."""

    conv1: nn.Conv2d
    bn1: nn.Module

    def __init__(
        self,
        *,
        block: str,
        layers: Sequence[int],
        widths: Sequence[int],
        stem: str,
        stem_width: int,
        num_classes: int = 1000,
        in_chans: int = 3,
        shortcut: str = "B",
        pad_placement: str = "after",
        groups: int = 1,
        width_per_group: int = 64,
        stride_in_1x1: bool = False,
        zero_init_last: bool = False,
        drop_path_rate: float = 0.0,
        output_stride: int | None = None,
        default_input_size: tuple[int, int, int] = (3, 224, 224),
        norm: str = "batch",
        branch_gate: bool = False,
        fixup: bool = False,
    ) -> None:
        super().__init__()
        _check_choice("block", block, tuple(BLOCKS))
        _check_choice("stem", stem, STEMS)
        _check_choice("shortcut", shortcut, SHORTCUTS)
        _check_choice("pad_placement", pad_placement, PAD_PLACEMENTS)
        _check_choice("norm", norm, tuple(NORMS))
        _check_branch_options(block=block, shortcut=shortcut, norm=norm, branch_gate=branch_gate, fixup=fixup,
                              zero_init_last=zero_init_last)
        if len(layers) != len(widths) or not layers:
            raise ValueError(f"layers {list(layers)} and widths {list(widths)} must be non-empty and of equal length")
        if num_classes < 0 or in_chans < 1:
            raise ValueError(f"num_classes must be >= 0 and in_chans >= 1 (got {num_classes}, {in_chans})")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        unit = FIXUP_BLOCKS[block] if fixup else BLOCKS[block]
        self.block_name = block
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.shortcut = shortcut
        self.preact = unit.preact
        self.default_input_size = (in_chans,) + tuple(default_input_size[1:])
        self.grad_checkpointing = False

        self.norm_kind = norm
        self.fixup = fixup
        norm_layer = NORMS[norm]
        self.conv1, self.bn1, self.relu, self.maxpool, stem_stride = self._make_stem(
            stem, in_chans, stem_width, norm_layer=_fixup_bias if fixup else norm_layer)
        self.stage_names: list[str] = []
        # timm's keys (num_chs, reduction, module) and ours (channels, stride, name) for every stage;
        # the stem's map (index 0 of forward_intermediates) is described by stem_info
        self.feature_info: list[dict[str, object]] = []
        conv_stride = int(self.conv1.stride[0])
        self.stem_info: dict[str, object] = {"name": "stem", "channels": stem_width, "stride": conv_stride,
                                             "num_chs": stem_width, "reduction": conv_stride, "module": "relu"}
        strides = self._stage_strides(stem_stride, len(layers), output_stride)
        rates = self._drop_path_rates(drop_path_rate, sum(layers))
        inplanes, dilation, reduction, k = stem_width, 1, stem_stride, 0
        for i, (depth, width) in enumerate(zip(layers, widths)):
            stride, dilate = strides[i]
            previous_dilation = dilation
            dilation *= dilate
            reduction *= stride
            units: list[nn.Module] = []
            for j in range(depth):
                out_ch = width * unit.expansion
                s = stride if j == 0 else 1
                units.append(
                    unit(
                        inplanes,
                        width,
                        stride=s,
                        downsample=make_shortcut(
                            shortcut, inplanes, out_ch, stride=s, norm_layer=None if unit.preact else norm_layer,
                            pad_placement=pad_placement,
                        ),
                        groups=groups,
                        base_width=width_per_group,
                        dilation=dilation,
                        first_dilation=previous_dilation if j == 0 else dilation,
                        norm_layer=norm_layer,
                        residual=shortcut != "none",
                        drop_path=rates[k],
                        stride_in_1x1=stride_in_1x1,
                        branch_gate=branch_gate,
                    )
                )
                inplanes, k = out_ch, k + 1
            name = f"layer{i + 1}"
            self.add_module(name, nn.Sequential(*units))
            self.stage_names.append(name)
            self.feature_info.append({"name": name, "channels": inplanes, "stride": reduction,
                                      "num_chs": inplanes, "reduction": reduction, "module": name})
        self.num_features = inplanes
        self.min_input_size = reduction
        # pre-activation nets end with BN-ReLU before pooling; post-activation nets need none;
        # Fixup's scalar bias before the classifier sits here (a constant commutes with the pooling)
        self.final_norm: nn.Module = norm_layer(inplanes) if unit.preact else ScalarBias() if fixup else nn.Identity()
        self.final_act: nn.Module = nn.ReLU(inplace=True) if unit.preact else nn.Identity()
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc: nn.Module = nn.Linear(inplanes, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights(zero_init_last=zero_init_last)
        if fixup:
            self._init_fixup()

    # -- construction helpers -------------------------------------------------
    @staticmethod
    def _make_stem(
        stem: str, in_chans: int, width: int, *, norm_layer: NormLayer
    ) -> tuple[nn.Conv2d, nn.Module, nn.Module, nn.Module, int]:
        if stem == "imagenet":
            conv = nn.Conv2d(in_chans, width, kernel_size=7, stride=2, padding=3, bias=False)
            return conv, norm_layer(width), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1), 4
        conv = nn.Conv2d(in_chans, width, kernel_size=3, stride=1, padding=1, bias=False)
        return conv, norm_layer(width), nn.ReLU(inplace=True), nn.Identity(), 1

    @staticmethod
    def _stage_strides(stem_stride: int, num_stages: int, output_stride: int | None) -> list[tuple[int, int]]:
        """(stride, dilation factor) per stage; stages past ``output_stride`` dilate instead of striding."""
        natural = stem_stride * 2 ** (num_stages - 1)
        allowed = [stem_stride * 2**k for k in range(num_stages)]
        if output_stride is None:
            output_stride = natural
        if output_stride not in allowed:
            raise ValueError(
                f"output_stride={output_stride} is not possible for this network; choose one of {allowed}"
            )
        plan, current = [(1, 1)], stem_stride
        for _ in range(1, num_stages):
            if current * 2 > output_stride:
                plan.append((1, 2))
            else:
                plan.append((2, 1))
                current *= 2
        return plan

    @staticmethod
    def _drop_path_rates(rate: float, n: int) -> list[float]:
        """Stochastic depth rate rising linearly from 0 to ``rate`` over the units."""
        return [rate * i / max(n - 1, 1) for i in range(n)]

    def _init_weights(self, *, zero_init_last: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_last:
            for m in self.units():
                m.zero_init_last()

    def _init_fixup(self) -> None:
        """Fixup (Zhang et al. 2019, section 3): the classifier and each branch's last conv at zero, the
        branch's other conv scaled by L^(-1/(2m-2)) (L units of m = 2 layers: L^-1/2); biases 0, multipliers 1."""
        units = self.units()
        scale = len(units) ** -0.5
        with torch.no_grad():
            for u in units:
                assert isinstance(u, FixupBasicBlock)
                u.conv1.weight.mul_(scale)
                u.zero_init_last()
        if isinstance(self.fc, nn.Linear):
            nn.init.zeros_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)

    # -- the interface shared by every model --------------------------------
    def units(self) -> list[Unit]:
        """Every residual (or plain) unit, in order."""
        return [m for m in self.modules() if isinstance(m, Unit)]

    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, name) for name in self.stage_names]

    def weighted_layers(self) -> int:
        """Weighted layers as the paper counts them: stem conv + main-path convs + fc."""
        head = 1 if isinstance(self.fc, nn.Linear) else 0
        return 1 + sum(count_weighted_layers(u) for u in self.units()) + head

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute activations in the backward pass (about sqrt(n) stored per stage)."""
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a freshly initialised one of ``num_classes`` outputs (0: no head)."""
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    @torch.jit.unused
    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(
                f"expected a batch of images of shape (N, {self.in_chans}, H, W), got shape {tuple(x.shape)}; "
                "add a batch dimension with x.unsqueeze(0)"
            )
        if x.shape[1] != self.in_chans:
            raise ValueError(
                f"this model takes {self.in_chans}-channel input but got {x.shape[1]} channels "
                f"(shape {tuple(x.shape)}); create it with in_chans={x.shape[1]} or convert the images"
            )
        h, w = x.shape[-2:]
        if h < self.min_input_size or w < self.min_input_size:
            raise ValueError(
                f"input {h}x{w} is too small for this network, whose stages reduce the image "
                f"{self.min_input_size}x; use images of at least {self.min_input_size}x{self.min_input_size} "
                f"(native size {self.default_input_size[1]}x{self.default_input_size[2]}) or resize them"
            )

    def _run_stage(self, stage: nn.Sequential, x: Tensor) -> Tensor:
        if self.grad_checkpointing and self.training and torch.is_grad_enabled() and not torch.jit.is_scripting():
            # segments of ~sqrt(n) units, every one recomputed in backward (the last one too,
            # unlike checkpoint_sequential): only the segments' inputs are kept
            size = max(1, math.ceil(math.sqrt(len(stage))))
            for i in range(0, len(stage), size):
                x = checkpoint(stage[i : i + size], x, use_reentrant=False)
            return x
        return stage(x)

    def forward_stem(self, x: Tensor) -> Tensor:
        if not torch.jit.is_scripting() and not torch.jit.is_tracing() and not isinstance(x, torch.fx.Proxy):
            self._check_input(x)
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_stages(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """The output of every stage, keyed by name (see ``feature_info`` for channels and strides)."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        x = self.forward_stem(x)
        for name in self.stage_names:
            x = self._run_stage(getattr(self, name), x)
            out[name] = x
        return out

    def forward_intermediates(self, x: Tensor, *, indices: Sequence[int]) -> list[Tensor]:
        """The feature maps at ``indices`` as timm numbers them: 0 the stem (after its ReLU, before
        any max-pool), i the output of stage i; stages past the last index asked for are not run."""
        count = len(self.stage_names) + 1
        wanted = sorted({int(i) for i in indices})
        if not wanted or wanted[0] < 0 or wanted[-1] >= count:
            raise ValueError(f"feature indices {list(indices)} must be in 0..{count - 1} (0: stem, i: stage i)")
        if not torch.jit.is_scripting() and not torch.jit.is_tracing() and not isinstance(x, torch.fx.Proxy):
            self._check_input(x)
        x = self.relu(self.bn1(self.conv1(x)))  # (N, C0, H/2, W/2) on ImageNet nets, (N, 16, H, W) on CIFAR
        out = [x] if 0 in wanted else []
        x = self.maxpool(x)
        for i, name in enumerate(self.stage_names[: wanted[-1]], start=1):
            x = self._run_stage(getattr(self, name), x)  # (N, C_i, H/s_i, W/s_i)
            if i in wanted:
                out.append(x)
        return out

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.forward_stem(x)  # (N, C0, H/s, W/s)
        for name in self.stage_names:
            x = self._run_stage(getattr(self, name), x)
        return self.final_act(self.final_norm(x))  # (N, num_features, h, w)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (N, num_features)
        return x if pre_logits else self.fc(x)  # (N, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))
