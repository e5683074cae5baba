"""The default CPU path: the fastest installed (backend, precision) that keeps the accuracy.

The order is measured (benchmarks/RESULTS.md, `resnets bench --suite deploy`): on a CPU with
native bf16, OpenVINO bf16 then torch bf16 (both agree with fp32 on the top-1 of >= 99.5 % of a
held-out set); else OpenVINO fp32, onnxruntime fp32, torch fp32. int8 is never picked by itself:
it needs calibration and an accuracy check (`resnets quantize`).
"""

from __future__ import annotations

from resnets.deploy.backends import available
from resnets.deploy.cpu_features import cpu_has_bf16

CPU_ORDER: tuple[tuple[str, str], ...] = (
    ("openvino", "bf16"),
    ("torch", "bf16"),
    ("openvino", "fp32"),
    ("onnxruntime", "fp32"),
    ("torch", "fp32"),
)


def fastest_cpu_path(*, backend: str | None = None, precision: str | None = None) -> tuple[str, str]:
    """The first (backend, precision) of :data:`CPU_ORDER` that is installed, runs natively here and
    matches ``backend`` / ``precision`` where given (None: any)."""
    for b, p in CPU_ORDER:
        if backend not in (None, b) or precision not in (None, p):
            continue
        if available(b) and (p != "bf16" or cpu_has_bf16()):
            return b, p
    return backend or "torch", precision or "fp32"


__all__ = ["CPU_ORDER", "fastest_cpu_path"]
