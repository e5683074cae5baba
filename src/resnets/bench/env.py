"""What a reported number needs beside it: device, library versions, date, machine load."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from typing import Any

import torch

from resnets.cpu_features import cpuinfo


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else platform.processor())."""
    return cpuinfo("model name") or platform.processor() or "unknown CPU"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"


def environment(device: torch.device) -> dict[str, Any]:
    import torchvision

    from resnets import __version__

    env: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": device_name(device),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": load_average(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "resnets": __version__,
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env


__all__ = ["cpu_model", "device_name", "environment", "load_average"]
