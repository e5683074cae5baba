"""What every inference backend shares: the precisions, their tolerances, the output check.

A backend turns a BN-folded fp32 model into an ``nn.Module`` whose forward takes a float32
batch (N, C, H, W) and returns float32 logits (N, K); :func:`check_outputs` compares it with
the fp32 torch model on a batch when it is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

import torch
from torch import Tensor, nn

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")

# Largest accepted |out - ref| / max|ref| (ref: the fp32 torch model, max over the batch).
# fp32: rounding only (another summation order); bf16: 8-bit mantissa through every layer;
# int8: 8-bit activations and per-channel 8-bit weights, calibrated on the check batch's kind of data.
TOLERANCES: dict[str, float] = {"fp32": 1e-4, "bf16": 0.1, "int8": 0.25}

# The pip extra that brings each optional runtime (module name -> extra).
EXTRAS: dict[str, str] = {"onnx": "onnx", "onnxruntime": "onnx", "openvino": "openvino", "nncf": "openvino"}


class OutputMismatchError(ValueError):
    """A built backend's outputs differ from the fp32 torch model by more than its precision allows."""


def require_extra(module_name: str) -> ModuleType:
    """Import an optional runtime or raise one line naming the ``pip install`` that brings it."""
    try:
        return importlib.import_module(module_name)
    except ImportError:
        extra = EXTRAS.get(module_name.split(".")[0], module_name)
        raise ImportError(
            f"{module_name} is not installed; install it with `pip install resnets[{extra}]`"
        ) from None


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


def relative_error(out: Tensor, ref: Tensor) -> float:
    """max |out - ref| / max |ref| over the batch (logits of shape (N, K))."""
    scale = float(ref.abs().max().clamp_min(1e-12))
    return float((out.float() - ref.float()).abs().max()) / scale


@torch.no_grad()
def check_outputs(built: Callable[[Tensor], Tensor], reference: nn.Module, x: Tensor, *, precision: str, label: str) -> float:
    """The relative error of ``built`` against ``reference`` (fp32, eval) on ``x``; raises past the tolerance."""
    ref = reference(x).float()  # (N, K)
    out = built(x)
    if out.shape != ref.shape:
        raise OutputMismatchError(f"{label} gave outputs of shape {tuple(out.shape)}, the model {tuple(ref.shape)}")
    error = relative_error(out, ref)
    if not error <= TOLERANCES[precision]:  # NaN fails too
        raise OutputMismatchError(
            f"{label} differs from the fp32 torch model by {error:.3g} (relative to the largest logit) on a check "
            f"batch, more than the {TOLERANCES[precision]:g} allowed for {precision}; use precision 'fp32' or "
            "calibrate on images like those it will see"
        )
    return error


__all__ = ["EXTRAS", "OutputMismatchError", "PRECISIONS", "TOLERANCES", "check_outputs", "check_precision",
           "relative_error", "require_extra"]
