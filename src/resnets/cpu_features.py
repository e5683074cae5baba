"""What the CPU can run fast: its instruction-set flags, and whether bf16 compute is native.

bf16 on the CPU pays off only with native bf16 dot products (AVX512-BF16, or AMX-BF16 tiles);
elsewhere torch and the runtimes emulate it, slower than fp32, so the library refuses it there.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

BF16_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo names, either one suffices
INT8_FLAGS: tuple[str, ...] = ("amx_int8", "avx512_vnni", "avx_vnni")  # int8 dot products (faster int8)
SHOWN_FLAGS: tuple[str, ...] = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


@functools.cache
def cpuinfo(field: str) -> str | None:
    """The first value of ``field`` ("flags", "model name") in /proc/cpuinfo (None where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.split(":", 1)[0].strip() == field:
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def cpu_flags() -> frozenset[str]:
    """The CPU's instruction-set flags as /proc/cpuinfo names them (empty where there is no such file)."""
    return frozenset((cpuinfo("flags") or "").split())


def shown_flags() -> list[str]:
    """The flags that matter for inference speed, those this CPU has."""
    flags = cpu_flags()
    return [f for f in SHOWN_FLAGS if f in flags]


# oneDNN's ISA levels, lowest first (ONEDNN_MAX_CPU_ISA names; AVX10_1_512* are the newer names of
# the last three), and the level that each flag above needs. oneDNN runs the convolutions of torch
# and OpenVINO on the CPU, so a cap set there (as on a CPU without these instructions) rules them out.
ONEDNN_LEVELS: tuple[str, ...] = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                                  "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX",
                                  "AVX512_CORE_AMX_FP16")
ONEDNN_ALIASES: dict[str, str] = {"AVX10_1_512": "AVX512_CORE_FP16", "AVX10_1_512_AMX": "AVX512_CORE_AMX",
                                  "AVX10_1_512_AMX_FP16": "AVX512_CORE_AMX_FP16"}
FLAG_LEVELS: dict[str, str] = {"avx_vnni": "AVX2_VNNI", "avx512_vnni": "AVX512_CORE_VNNI",
                               "avx512_bf16": "AVX512_CORE_BF16", "amx_bf16": "AVX512_CORE_AMX",
                               "amx_int8": "AVX512_CORE_AMX"}


def _allowed(flag: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether oneDNN may use ``flag``'s instructions under ``ONEDNN_MAX_CPU_ISA`` (unset: all)."""
    cap = (os.environ if env is None else env).get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    cap = ONEDNN_ALIASES.get(cap, cap)
    if cap not in ONEDNN_LEVELS or flag not in FLAG_LEVELS:  # "ALL", "DEFAULT", unset or unknown: no cap
        return True
    return ONEDNN_LEVELS.index(FLAG_LEVELS[flag]) <= ONEDNN_LEVELS.index(cap)


def cpu_has_bf16() -> bool:
    """Native bf16 dot products: AVX512-BF16 or AMX-BF16, and usable (not capped by ONEDNN_MAX_CPU_ISA)."""
    return bf16_missing() is None


def has_int8_dot_products() -> bool:
    """VNNI (AVX512 or AVX) or AMX-INT8: int8 products accumulate without saturating."""
    flags = cpu_flags()
    return any(f in flags and _allowed(f) for f in INT8_FLAGS)


def bf16_missing() -> str | None:
    """Why bf16 is not native here, in words naming the instruction set (None where it is native)."""
    flags = cpu_flags()
    present = [f for f in BF16_FLAGS if f in flags]
    if not present:
        return "this CPU has neither (bf16 would be emulated, slower than fp32)"
    if not any(_allowed(f) for f in present):
        cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip()
        names = " and ".join(f.upper().replace("_", "-") for f in present)
        return f"ONEDNN_MAX_CPU_ISA={cap} rules out this CPU's {names} (bf16 would be emulated, slower than fp32)"
    return None


def require_cpu_bf16(*, fix: str = "use precision 'fp32' or 'int8'") -> None:
    """Raise one line naming the missing instruction set, and ``fix``, unless the CPU computes
    bf16 natively (AVX512-BF16 or AMX-BF16, not capped by ONEDNN_MAX_CPU_ISA)."""
    reason = bf16_missing()
    if reason is not None:
        raise ValueError(f"bf16 on the CPU needs AVX512-BF16 or AMX-BF16: {reason}; {fix}")


__all__ = ["BF16_FLAGS", "INT8_FLAGS", "bf16_missing", "cpu_flags", "cpu_has_bf16", "cpuinfo", "has_int8_dot_products",
           "require_cpu_bf16", "shown_flags"]
