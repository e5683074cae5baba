"""Inference backends for the CPU: torch, onnxruntime, OpenVINO; fp32, bf16 and int8.

:func:`build_inference` (reached through :func:`resnets.deploy.inference_model` with a
``backend`` or a ``precision``) folds BN, builds the backend and checks its outputs against
the fp32 torch model on a batch (tolerances in :data:`TOLERANCES`). onnxruntime and OpenVINO
are optional extras, imported only when asked for.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from resnets.cpu_features import require_cpu_bf16
from resnets.deploy.backends.base import (
    PRECISIONS,
    TOLERANCES,
    OutputMismatchError,
    check_outputs,
    check_precision,
    require_extra,
)
from resnets.deploy.backends.torch_model import InferenceModel, torch_inference
from resnets.deploy.export import example_input
from resnets.deploy.fold import fold_bn

Builder = Callable[[nn.Module, str, Sequence[int], "Sequence[Tensor] | None"], nn.Module]


def _ort(net: nn.Module, precision: str, size: Sequence[int], calibration: Sequence[Tensor] | None) -> nn.Module:
    from resnets.deploy.backends.ort_session import build_ort

    return build_ort(net, precision=precision, input_size=size, calibration=calibration)


def _openvino(net: nn.Module, precision: str, size: Sequence[int], calibration: Sequence[Tensor] | None) -> nn.Module:
    from resnets.deploy.backends.openvino_model import build_openvino

    return build_openvino(net, precision=precision, input_size=size, calibration=calibration)


@dataclass(frozen=True)
class Backend:
    precisions: tuple[str, ...]
    module: str  # the optional package it needs ("" for torch)
    build: Builder | None  # None: the torch path of inference_model


BACKENDS: dict[str, Backend] = {
    "torch": Backend(precisions=("fp32", "bf16"), module="", build=None),
    "onnxruntime": Backend(precisions=("fp32", "int8"), module="onnxruntime", build=_ort),
    "openvino": Backend(precisions=("fp32", "bf16", "int8"), module="openvino", build=_openvino),
}


def check_backend(backend: str, precision: str) -> Backend:
    """The backend entry, or one line naming the choices."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    check_precision(precision)
    entry = BACKENDS[backend]
    if precision not in entry.precisions:
        others = [name for name, b in BACKENDS.items() if precision in b.precisions]
        raise ValueError(f"backend {backend!r} has no {precision} path here; use precision "
                         f"{' or '.join(repr(p) for p in entry.precisions)}, or backend {' or '.join(others)}")
    return entry


def available(backend: str) -> bool:
    """Whether ``backend``'s runtime is installed (without importing it)."""
    import importlib.util

    module = BACKENDS[backend].module
    return not module or importlib.util.find_spec(module) is not None


def _size(model: nn.Module, input_size: Sequence[int] | None) -> tuple[int, ...]:
    if input_size is not None:
        size = tuple(int(s) for s in input_size)
    else:
        size = tuple(int(s) for s in getattr(model, "default_input_size", (3, 224, 224)))
    return size if len(size) == 3 else (int(getattr(model, "in_chans", 3)),) + size


def build_inference(
    model: nn.Module,
    *,
    device: torch.device | str,
    backend: str,
    precision: str,
    fold: bool = True,
    compile: bool = False,
    channels_last: bool | None = None,
    calibration: Sequence[Tensor] | None = None,
    input_size: Sequence[int] | None = None,
) -> InferenceModel:
    """``model`` ready for prediction with ``backend`` in ``precision``, its outputs checked on a batch.

    The check batch is the first calibration batch for int8 (random images would leave the
    calibrated ranges), else a random batch of ``input_size``.
    """
    entry = check_backend(backend, precision)
    dev = torch.device(device)
    if entry.build is not None and dev.type != "cpu":
        raise ValueError(f"backend {backend!r} runs on the CPU here; use device='cpu' or backend 'torch'")
    if entry.build is not None and compile:
        raise ValueError(f"compile is for backend 'torch'; backend {backend!r} compiles the model itself")
    if entry.module:
        require_extra(entry.module)
    if precision == "int8" and not calibration:
        raise ValueError("int8 needs calibration images: pass calibration=[batches (N, C, H, W)], "
                         "or quantize a run with `resnets quantize RUN`")
    if precision == "bf16" and dev.type == "cpu":
        require_cpu_bf16()
    reference = copy.deepcopy(model).float().cpu().eval()
    size = _size(reference, input_size)
    if entry.build is None:
        built = torch_inference(model, device=dev, fold=fold, compile=compile, channels_last=channels_last,
                                bf16=precision == "bf16")
    else:
        net = fold_bn(reference) if fold else copy.deepcopy(reference)
        built = InferenceModel(entry.build(net, precision, size, calibration), channels_last=False,
                               autocast_dtype=None)
    built.backend, built.precision = backend, precision
    if precision == "int8" and calibration:
        x = calibration[0][:8].float().cpu()  # (n <= 8, C, H, W)
    else:
        x = example_input(reference, size, batch=2)
    built.check_error = check_outputs(_on(built, dev), reference, x, precision=precision,
                                      label=f"the {backend} {precision} model")
    return built


def _on(built: InferenceModel, device: torch.device) -> Callable[[Tensor], Tensor]:
    """``built`` as a CPU-in, CPU-out function (for the check)."""
    return lambda x: built(x.to(device)).cpu()


__all__ = ["BACKENDS", "PRECISIONS", "TOLERANCES", "Backend", "OutputMismatchError", "available",
           "build_inference", "check_backend"]
