"""ONNX Runtime on the CPU: the BN-folded model exported to ONNX, fp32 or int8 (static, QDQ).

int8 is onnxruntime's post-training static quantization: per-channel signed 8-bit weights,
unsigned 8-bit activations with ranges from the calibration batches (MinMax), in the QDQ
format that its CPU provider fuses into integer convolutions (VNNI / AMX where the CPU has them;
without them, 7-bit weights, onnxruntime's advice against saturating u8 x s8 products).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from resnets.cpu_features import has_int8_dot_products
from resnets.deploy.backends.base import require_extra
from resnets.deploy.export import export_onnx


class OrtModule(nn.Module):
    """An onnxruntime session behind an ``nn.Module``: float32 (N, C, H, W) in, float32 (N, K) out."""

    def __init__(self, path: Path, *, threads: int) -> None:
        super().__init__()
        ort = require_extra("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.path = path

    def forward(self, x: Tensor) -> Tensor:  # x: (N, C, H, W)
        array = np.ascontiguousarray(x.detach().float().cpu().numpy())
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])  # (N, K)


def _quantize_int8(fp32_path: Path, out_path: Path, calibration: Sequence[Tensor]) -> Path:
    quant = require_extra("onnxruntime.quantization")

    class Reader(quant.CalibrationDataReader):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.batches = iter([b.detach().float().cpu().numpy() for b in calibration])

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"input": batch}

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process the graph, printed on every call
    try:
        quant.quantize_static(
            str(fp32_path), str(out_path), Reader(), quant_format=quant.QuantFormat.QDQ, per_channel=True,
            activation_type=quant.QuantType.QUInt8, weight_type=quant.QuantType.QInt8,
            calibrate_method=quant.CalibrationMethod.MinMax,
            reduce_range=not has_int8_dot_products(),  # 7-bit weights where u8 x s8 products could saturate
        )
    finally:
        root.setLevel(level)
    return out_path


def build_ort(
    net: nn.Module, *, precision: str, input_size: Sequence[int], calibration: Sequence[Tensor] | None,
    workdir: Path | None = None,
) -> OrtModule:
    """``net`` (eval, BN folded, fp32, on the CPU) as an onnxruntime session of ``precision``."""
    if precision == "bf16":
        raise ValueError("onnxruntime's CPU provider has no bf16 convolutions; use backend 'torch' or 'openvino' "
                         "for bf16, or precision 'fp32' / 'int8'")
    require_extra("onnxruntime")
    folder = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="resnets-ort-"))
    path = export_onnx(net, folder / "model_fp32.onnx", input_size=input_size, fold=False)
    if precision == "int8":
        assert calibration is not None
        path = _quantize_int8(path, folder / "model_int8.onnx", calibration)
    return OrtModule(path, threads=torch.get_num_threads())


__all__ = ["OrtModule", "build_ort"]
