"""A model made ready for batched prediction: folded, on its device, optionally compiled."""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import Tensor, nn

from resnets.deploy.cpu_features import require_cpu_bf16
from resnets.deploy.fold import fold_bn
from resnets.runtime import resolve_channels_last, resolve_device, resolve_precision


class InferenceModel(nn.Module):
    """Runs ``model`` without gradients, in channels-last layout and bf16 autocast when asked.

    Outputs are always float32 (N, num_classes), whatever the compute precision. Another
    backend (onnxruntime, OpenVINO) is a ``model`` of its own; ``backend`` and ``precision`` say
    what runs, ``check_error`` the relative error against the fp32 model measured when built.
    """

    def __init__(self, model: nn.Module, *, channels_last: bool, autocast_dtype: torch.dtype | None) -> None:
        super().__init__()
        self.model = model
        self.channels_last = channels_last
        self.autocast_dtype = autocast_dtype
        self.backend = "torch"
        self.precision = "fp32" if autocast_dtype is None else "bf16"
        self.check_error: float | None = None

    def describe(self) -> str:
        return f"{self.backend} {self.precision}"

    def forward(self, x: Tensor) -> Tensor:  # x: (N, C, H, W)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            if self.autocast_dtype is None:
                return self.model(x).float()
            with torch.autocast(device_type=x.device.type, dtype=self.autocast_dtype):
                return self.model(x).float()  # (N, num_classes)


def inference_model(
    model: nn.Module,
    *,
    device: torch.device | str,
    backend: str = "torch",
    precision: str | None = None,
    calibration: Sequence[Tensor] | None = None,
    input_size: Sequence[int] | None = None,
    fold: bool = True,
    compile: bool = False,
    channels_last: bool | None = None,
    bf16: bool | None = None,
) -> InferenceModel:
    """An eval-mode copy of ``model`` for prediction (the original is left untouched).

    fold: merge BatchNorm into the convolutions (see :func:`resnets.deploy.fold_bn`).
    compile: ``torch.compile`` the network (first batches are slow while it compiles).
    channels_last: NHWC layout (None: the package's policy, :mod:`resnets.runtime`).
    bf16: bf16 autocast (None: the package's policy: on CUDA devices that support bf16; CPU stays fp32;
    True on the CPU needs AVX512-BF16 or AMX-BF16).
    backend, precision: "torch" | "onnxruntime" | "openvino" and "fp32" | "bf16" | "int8"; given
    either, the outputs are checked against the fp32 model when built (see ``resnets.deploy.backends``);
    int8 needs ``calibration`` batches, ``input_size`` (C, H, W) defaults to the model's.
    """
    if backend != "torch" or precision is not None:
        from resnets.deploy.backends import build_inference

        return build_inference(model, device=device, backend=backend, precision=precision or "fp32", fold=fold,
                               compile=compile, channels_last=channels_last, calibration=calibration,
                               input_size=input_size)
    dev = resolve_device(device)
    if bf16 and dev.type != "cuda":
        require_cpu_bf16()
    net = fold_bn(model) if fold else copy.deepcopy(model).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    use_cl = resolve_channels_last(channels_last, dev)
    net = net.to(dev, memory_format=torch.channels_last) if use_cl else net.to(dev)
    if bf16 is None:
        bf16 = resolve_precision("auto", dev) is not None
    if compile:
        net = torch.compile(net)  # type: ignore[assignment]
    return InferenceModel(net, channels_last=use_cl, autocast_dtype=torch.bfloat16 if bf16 else None)


__all__ = ["InferenceModel", "inference_model"]
