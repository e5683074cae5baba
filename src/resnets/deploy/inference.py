"""A model made ready for batched prediction: folded, on its device, optionally compiled."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from resnets.deploy.backends import build_inference
from resnets.deploy.backends.torch_model import InferenceModel, torch_inference


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
        return build_inference(model, device=device, backend=backend, precision=precision or "fp32", fold=fold,
                               compile=compile, channels_last=channels_last, calibration=calibration,
                               input_size=input_size)
    return torch_inference(model, device=device, fold=fold, compile=compile, channels_last=channels_last, bf16=bf16)


__all__ = ["InferenceModel", "inference_model"]
