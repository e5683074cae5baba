"""What the CPU can run fast: its instruction-set flags, and whether bf16 compute is native.

bf16 on the CPU pays off only with native bf16 dot products (AVX512-BF16, or AMX-BF16 tiles);
elsewhere torch and the runtimes emulate it, slower than fp32, so the library refuses it there.
"""

from __future__ import annotations

import functools

BF16_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo names, either one suffices
INT8_FLAGS: tuple[str, ...] = ("amx_int8", "avx512_vnni", "avx_vnni")  # int8 dot products (faster int8)
SHOWN_FLAGS: tuple[str, ...] = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's instruction-set flags as /proc/cpuinfo names them (empty where there is no such file)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def shown_flags() -> list[str]:
    """The flags that matter for inference speed, those this CPU has."""
    flags = cpu_flags()
    return [f for f in SHOWN_FLAGS if f in flags]


def cpu_has_bf16() -> bool:
    """Native bf16 dot products: AVX512-BF16 or AMX-BF16."""
    flags = cpu_flags()
    return any(f in flags for f in BF16_FLAGS)


def has_int8_dot_products() -> bool:
    """VNNI (AVX512 or AVX) or AMX-INT8: int8 products accumulate without saturating."""
    flags = cpu_flags()
    return any(f in flags for f in INT8_FLAGS)


def require_cpu_bf16() -> None:
    """Raise one line naming the missing instruction set unless the CPU computes bf16 natively."""
    if not cpu_has_bf16():
        raise ValueError(
            "bf16 on this CPU needs the AVX512-BF16 or AMX-BF16 instruction set, which it lacks "
            "(bf16 would be emulated, slower than fp32); use precision 'fp32' or 'int8'"
        )


__all__ = ["BF16_FLAGS", "INT8_FLAGS", "cpu_flags", "cpu_has_bf16", "has_int8_dot_products", "require_cpu_bf16",
           "shown_flags"]
