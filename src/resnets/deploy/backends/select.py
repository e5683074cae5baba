"""The default CPU path: the fastest installed (backend, precision) that keeps the accuracy.

The order is measured (benchmarks/RESULTS.md, `resnets bench --suite deploy`): on a CPU with
native bf16, OpenVINO bf16 then torch bf16 (both agree with fp32 on the top-1 of >= 99.5 % of a
held-out set); else OpenVINO fp32, onnxruntime fp32, torch fp32. int8 is never picked by itself:
it needs calibration and an accuracy check (`resnets quantize`). For a few images the torch paths
come first: building an OpenVINO or onnxruntime model (conversion, compilation) takes seconds,
more than it saves on a handful of images (measured with `resnets predict` on one 224x224 JPEG).
"""

from __future__ import annotations

from resnets.cpu_features import cpu_has_bf16
from resnets.deploy.backends import available

FEW_IMAGES = 64  # below this many images, the torch paths (nothing to convert) are preferred

CPU_ORDER: tuple[tuple[str, str], ...] = (
    ("openvino", "bf16"),
    ("torch", "bf16"),
    ("openvino", "fp32"),
    ("onnxruntime", "fp32"),
    ("torch", "fp32"),
)


def fastest_cpu_path(
    *, backend: str | None = None, precision: str | None = None, images: int | None = None
) -> tuple[str, str]:
    """The first (backend, precision) of :data:`CPU_ORDER` that is installed, runs natively here and
    matches ``backend`` / ``precision`` where given (None: any); with fewer than :data:`FEW_IMAGES`
    ``images`` to run, the torch paths first."""
    order = CPU_ORDER
    if images is not None and images < FEW_IMAGES:
        order = tuple(sorted(CPU_ORDER, key=lambda bp: bp[0] != "torch"))  # stable: torch bf16, torch fp32, ...
    for b, p in order:
        if backend not in (None, b) or precision not in (None, p):
            continue
        if available(b) and (p != "bf16" or cpu_has_bf16()):
            return b, p
    return backend or "torch", precision or "fp32"


__all__ = ["CPU_ORDER", "FEW_IMAGES", "fastest_cpu_path"]
