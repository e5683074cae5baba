"""Export to ONNX and TorchScript, BN folded by default.

ONNX goes through the TorchScript-based exporter (``dynamo=False`` where torch has
that switch; torch 2.4 has only that exporter), which needs neither onnxscript nor
torch.export and handles every network of the zoo. ``onnx`` and ``onnxruntime`` are an
optional extra (``pip install resnets[onnx]``); a clear error says so when missing.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from resnets.deploy.fold import fold_bn

INPUT_NAME = "input"
OUTPUT_NAME = "output"


def require(module_name: str) -> ModuleType:
    """Import an optional dependency or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"{module_name} is needed for ONNX export and checking but is not installed; "
            "install the optional extra with `pip install resnets[onnx]`"
        ) from exc


def example_input(model: nn.Module, input_size: Sequence[int], *, batch: int = 2) -> Tensor:
    """A random batch of shape (batch, C, H, W) on the model's device and dtype.

    ``input_size`` is (C, H, W) or (H, W) (channels from the model's ``in_chans``).
    """
    size = tuple(int(s) for s in input_size)
    if len(size) == 2:
        size = (int(getattr(model, "in_chans", 3)),) + size
    if len(size) != 3 or min(size) < 1:
        raise ValueError(f"input_size must be (C, H, W) or (H, W) with positive sizes, got {tuple(input_size)}")
    smallest = int(getattr(model, "min_input_size", 1))
    if min(size[1:]) < smallest:
        raise ValueError(
            f"input_size {size[1]}x{size[2]} is too small for this network; use at least {smallest}x{smallest}"
        )
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    generator = torch.Generator().manual_seed(0)
    return torch.randn((batch,) + size, generator=generator).to(device=device, dtype=dtype)  # (N, C, H, W)


def prepare(model: nn.Module, *, fold: bool) -> nn.Module:
    """An eval-mode copy for export (BN folded when ``fold``); the original is left as it was."""
    import copy

    return fold_bn(model) if fold else copy.deepcopy(model).eval()


def quiet_exporter_notices() -> None:
    """Silence torch's notices that the TorchScript tools are deprecated and the tracer's
    shape warnings (expected here); call inside ``warnings.catch_warnings()``."""
    warnings.simplefilter("ignore", category=DeprecationWarning)
    warnings.simplefilter("ignore", category=FutureWarning)
    warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)


def _onnx_export_kwargs() -> dict[str, Any]:
    """``dynamo=False`` where torch.onnx.export has that switch (torch >= 2.5); nothing on 2.4."""
    params = inspect.signature(torch.onnx.export).parameters
    return {"dynamo": False} if "dynamo" in params else {}


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    input_size: Sequence[int],
    dynamic_batch: bool = True,
    fold: bool = True,
    opset: int = 17,
    check: bool = True,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``model`` as an ONNX graph with input ``"input"`` (N, C, H, W) and output ``"output"``.

    ``dynamic_batch`` leaves the batch dimension free; ``check`` runs ``onnx.checker``;
    ``metadata`` (for example from :func:`deploy_metadata`) is stored as the model's
    ``metadata_props``, where onnxruntime's ``get_modelmeta().custom_metadata_map`` reads it.
    Returns the path written.
    """
    onnx = require("onnx")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = prepare(model, fold=fold)
    x = example_input(net, input_size)
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with torch.no_grad(), warnings.catch_warnings():
        quiet_exporter_notices()
        torch.onnx.export(
            net,
            (x,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=opset,
            **_onnx_export_kwargs(),
        )
    if metadata:
        graph = onnx.load(str(path))
        for key, value in metadata.items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = str(key), str(value)
        onnx.save(graph, str(path))
    if check:
        onnx.checker.check_model(str(path))
    return path


def deploy_metadata(
    *,
    input_size: Sequence[int],
    class_names: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    model_name: str | None = None,
) -> dict[str, str]:
    """What a deployed file needs besides its graph, as strings (JSON for lists): the input size
    (C, H, W), the input normalisation ``(x / 255 - mean) / std`` per channel, the class names."""
    import json

    meta = {"input_size": json.dumps([int(s) for s in input_size]), "producer": "resnets"}
    if class_names is not None:
        meta["class_names"] = json.dumps([str(c) for c in class_names])
    if mean is not None and std is not None:
        meta["mean"], meta["std"] = json.dumps([float(m) for m in mean]), json.dumps([float(s) for s in std])
    if model_name:
        meta["model"] = model_name
    return meta


def run_onnx(path: str | os.PathLike[str], x: Tensor | np.ndarray) -> np.ndarray:
    """Run an exported graph with onnxruntime on the CPU; returns the first output."""
    ort = require("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    array = x.detach().cpu().numpy() if isinstance(x, Tensor) else x
    return session.run(None, {session.get_inputs()[0].name: array.astype(np.float32)})[0]


def verify_onnx(
    model: nn.Module, path: str | os.PathLike[str], *, input_size: Sequence[int], batch: int = 2
) -> float:
    """Max abs difference between onnxruntime on ``path`` and ``model`` (eval, fp32) on a random batch."""
    reference = prepare(model, fold=False).float().cpu()
    x = example_input(reference, input_size, batch=batch)
    with torch.no_grad():
        expected = reference(x).numpy()
    got = run_onnx(path, x)
    if got.shape != expected.shape:
        raise ValueError(f"the ONNX graph gave shape {got.shape} but the model gives {expected.shape}")
    return float(np.abs(got - expected).max())


def _trace(net: nn.Module, x: Tensor) -> torch.jit.ScriptModule:
    """Trace the model. Tracing, not scripting: the forward walks its stages by name
    (``getattr``) and skips its input checks under ``torch.jit.is_tracing()``; the traced
    graph holds only tensor ops, so it runs on any batch size and any large-enough image."""
    with torch.no_grad():
        return torch.jit.trace(net, (x,))


def export_torchscript(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    input_size: Sequence[int],
    fold: bool = True,
) -> Path:
    """Write ``model`` as traced TorchScript; load it with ``torch.jit.load`` (no resnets needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = prepare(model, fold=fold)
    x = example_input(net, input_size)
    with warnings.catch_warnings():
        quiet_exporter_notices()
        traced = _trace(net, x)
        torch.jit.save(traced, str(path))
    return path


def verify_torchscript(
    model: nn.Module, path: str | os.PathLike[str], *, input_size: Sequence[int], batch: int = 2
) -> float:
    """Max abs difference between the saved TorchScript module and ``model`` (eval) on a random batch."""
    reference = prepare(model, fold=False)
    x = example_input(reference, input_size, batch=batch)
    with torch.no_grad(), warnings.catch_warnings():
        quiet_exporter_notices()
        loaded = torch.jit.load(str(path), map_location=x.device)
        return float((loaded(x) - reference(x)).abs().max())


__all__ = [
    "deploy_metadata",
    "export_onnx",
    "export_torchscript",
    "example_input",
    "quiet_exporter_notices",
    "require",
    "run_onnx",
    "verify_onnx",
    "verify_torchscript",
]
