"""What a reported number needs beside it: the machine, the library versions, the date, the load
and the command. One record for every place that writes one (a run's env.json, the benchmarks'
results)."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import sys
from collections.abc import Sequence
from typing import Any

import torch

from resnets.cpu_features import cpuinfo, shown_flags


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


def installed_versions(libraries: Sequence[str]) -> dict[str, str]:
    """The installed version of each of ``libraries`` (distribution names); those not installed are left out."""
    found: dict[str, str] = {}
    for name in libraries:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def environment(device: torch.device, *, libraries: Sequence[str] = ()) -> dict[str, Any]:
    """Date, command, device, CPU (model, flags, cores, torch threads), load average, platform and
    the versions of python, torch, torchvision, numpy and resnets; with ``libraries``, also
    ``versions``: the installed version of each (e.g. onnxruntime, openvino)."""
    import numpy
    import torchvision

    from resnets import __version__

    env: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": sys.argv,
        "device": str(device),
        "device_name": device_name(device),
        "cpu_model": cpu_model(),
        "cpu_flags": shown_flags(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "resnets": __version__,
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    if libraries:
        env["versions"] = installed_versions(libraries)
    return env


__all__ = ["cpu_model", "device_name", "environment", "installed_versions", "load_average"]
