"""Peak memory of a callable: the CUDA allocator's peak on GPU, resident-set growth on the CPU.

The benchmark calls it around building one side alone and running two of its steps, so the
figure is that side's whole footprint: weights, optimizer state, graph pools, activations.
On CUDA: ``torch.cuda.max_memory_allocated`` during the call minus what was allocated
before it. On Linux CPUs: the peak resident set (VmHWM, reset through /proc/self/clear_refs)
minus the resident set before, after returning freed heap to the OS (``malloc_trim``); it is
approximate (allocator slack and caches count). Elsewhere it is not measured and the
result says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import torch

NOT_MEASURED_CPU = "CPU peak memory needs Linux /proc (VmHWM reset via clear_refs); not measured here"


def _status_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _malloc_trim() -> None:
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def cpu_rss_supported() -> bool:
    return _status_bytes("VmHWM") is not None and _reset_peak_rss()


def peak_cpu_bytes(run: Callable[[], None]) -> int | None:
    """Resident-set growth while ``run()`` runs, or None where it cannot be measured."""
    _malloc_trim()
    if not _reset_peak_rss():
        return None
    before = _status_bytes("VmRSS")
    run()
    peak = _status_bytes("VmHWM")
    if before is None or peak is None:
        return None
    return max(0, peak - before)


def peak_cuda_bytes(run: Callable[[], None], device: torch.device) -> int:
    """Allocator peak above the memory allocated before ``run()``."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return max(0, torch.cuda.max_memory_allocated(device) - before)


def peak_bytes(run: Callable[[], None], device: torch.device) -> int | None:
    if device.type == "cuda":
        return peak_cuda_bytes(run, device)
    return peak_cpu_bytes(run)


__all__ = ["NOT_MEASURED_CPU", "cpu_rss_supported", "peak_bytes", "peak_cpu_bytes", "peak_cuda_bytes"]
