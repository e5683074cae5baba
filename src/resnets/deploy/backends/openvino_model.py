"""OpenVINO on the CPU: the BN-folded model converted to OpenVINO IR, fp32, bf16 or int8 (NNCF).

The precision is always set explicitly (``INFERENCE_PRECISION_HINT``): OpenVINO's own default
on CPUs with AVX512-BF16 or AMX is bf16, not fp32. int8 is NNCF's post-training quantization
(symmetric per-channel 8-bit weights, 8-bit activations with ranges from the calibration batches);
the layers it leaves in floating point run in fp32.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from resnets.cpu_features import require_cpu_bf16
from resnets.deploy.backends.base import require_extra
from resnets.deploy.export import quiet_exporter_notices

HINTS: dict[str, str] = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def convert(net: nn.Module, *, input_size: Sequence[int]) -> Any:
    """``net`` (eval, fp32, on the CPU) as an ``openvino.Model`` with a free batch dimension."""
    ov = require_extra("openvino")
    c, h, w = (int(s) for s in input_size)
    example = torch.zeros(1, c, h, w)
    with torch.no_grad(), warnings.catch_warnings():
        quiet_exporter_notices()
        model = ov.convert_model(net, example_input=(example,))
    model.reshape({model.inputs[0]: ov.PartialShape([-1, c, h, w])})
    return model


def quantize_int8(model: Any, calibration: Sequence[Tensor]) -> Any:
    """NNCF post-training quantization of an ``openvino.Model`` on the calibration batches."""
    nncf = require_extra("nncf")
    batches = [b.detach().float().cpu().numpy() for b in calibration]
    # full bias correction: NNCF's fast one cost a CIFAR ResNet-20 0.5 points of top-1 and 5 % of its
    # predictions (agreement with fp32 94.7 % against 98.7 %, 5,000 held-out images)
    return nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches), fast_bias_correction=False)


class OpenVINOModule(nn.Module):
    """A compiled OpenVINO model behind an ``nn.Module``: float32 (N, C, H, W) in, float32 (N, K) out."""

    def __init__(self, model: Any, *, hint: str | None, threads: int) -> None:
        """hint: OpenVINO's ``INFERENCE_PRECISION_HINT`` ("f32", "bf16"); None leaves OpenVINO's default."""
        super().__init__()
        ov = require_extra("openvino")
        # no pinning: on a shared machine each compiled model would otherwise pin its threads to cores
        # of its own choosing, and two models of one process could land on a busy and an idle core
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                  "ENABLE_CPU_PINNING": False}
        if hint is not None:
            config["INFERENCE_PRECISION_HINT"] = hint
        self.ov_model = model
        self.compiled = ov.Core().compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def forward(self, x: Tensor) -> Tensor:  # x: (N, C, H, W)
        array = np.ascontiguousarray(x.detach().float().cpu().numpy())
        result = self.request.infer({0: array})
        return torch.from_numpy(np.array(result[self.compiled.outputs[0]], dtype=np.float32))  # (N, K)


def build_openvino(
    net: nn.Module, *, precision: str, input_size: Sequence[int], calibration: Sequence[Tensor] | None,
) -> OpenVINOModule:
    """``net`` (eval, BN folded, fp32, on the CPU) compiled by OpenVINO for the CPU in ``precision``."""
    if precision == "bf16":
        require_cpu_bf16()
    model = convert(net, input_size=input_size)
    if precision == "int8":
        assert calibration is not None
        model = quantize_int8(model, calibration)
    return OpenVINOModule(model, hint=HINTS[precision], threads=torch.get_num_threads())


def save_ir(module: OpenVINOModule, path: str) -> None:
    """Write the (converted, possibly quantized) model as OpenVINO IR: ``path`` (.xml) and its .bin."""
    ov = require_extra("openvino")
    ov.save_model(module.ov_model, path)




def export_openvino(model: nn.Module, path: str | Path, *, input_size: Sequence[int], fold: bool = True,
                    metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model`` as OpenVINO IR in fp32: ``path`` (.xml, the graph) and its .bin (the weights),
    with a free batch dimension; load it with ``openvino.Core().read_model``. ``metadata`` (see
    :func:`resnets.deploy.export.deploy_metadata`) goes into the model's runtime info under
    ``resnets``: ``model.get_rt_info(["resnets", "class_names"])``."""
    from resnets.deploy.export import prepare

    ov = require_extra("openvino")
    path = Path(path).with_suffix(".xml")
    path.parent.mkdir(parents=True, exist_ok=True)
    ir = convert(prepare(model, fold=fold).float().cpu(), input_size=input_size)
    for key, value in (metadata or {}).items():
        ir.set_rt_info(str(value), ["resnets", str(key)])
    ov.save_model(ir, str(path), compress_to_fp16=False)
    return path


def verify_openvino(model: nn.Module, path: str | Path, *, input_size: Sequence[int], batch: int = 2) -> float:
    """Max abs difference between OpenVINO (f32) running the IR at ``path`` and ``model`` (eval, fp32)."""
    from resnets.deploy.export import example_input, prepare

    ov = require_extra("openvino")
    reference = prepare(model, fold=False).float().cpu()
    x = example_input(reference, input_size, batch=batch)
    compiled = OpenVINOModule(ov.Core().read_model(str(path)), hint="f32", threads=torch.get_num_threads())
    with torch.no_grad():
        return float((compiled(x) - reference(x)).abs().max())


__all__ = ["HINTS", "OpenVINOModule", "build_openvino", "convert", "export_openvino", "quantize_int8", "save_ir",
           "verify_openvino"]
