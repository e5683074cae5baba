"""The torch backend: a folded eval-mode copy on its device, channels-last and bf16 autocast
as the runtime policy says, optionally compiled; and :class:`InferenceModel`, the one object
every backend returns."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from resnets.cpu_features import require_cpu_bf16
from resnets.deploy.fold import fold_bn
from resnets.runtime import resolve_channels_last, resolve_device, resolve_precision


class InferenceModel(nn.Module):
    """Runs ``model`` without gradients, in channels-last layout and bf16 autocast when asked.

    Outputs are always float32 (N, num_classes), whatever the compute precision. Another
    backend (onnxruntime, OpenVINO) is a ``model`` of its own; ``backend`` and ``precision`` say
    what runs, ``check_error`` the relative error against the fp32 model measured when built.
    """

    def __init__(self, model: nn.Module, *, channels_last: bool, autocast_dtype: torch.dtype | None) -> None:
        super().__init__()
        self.model = model
        self.channels_last = channels_last
        self.autocast_dtype = autocast_dtype
        self.backend = "torch"
        self.precision = "fp32" if autocast_dtype is None else "bf16"
        self.check_error: float | None = None

    def describe(self) -> str:
        return f"{self.backend} {self.precision}"

    def forward(self, x: Tensor) -> Tensor:  # x: (N, C, H, W)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            if self.autocast_dtype is None:
                return self.model(x).float()
            with torch.autocast(device_type=x.device.type, dtype=self.autocast_dtype):
                return self.model(x).float()  # (N, num_classes)


def torch_inference(
    model: nn.Module,
    *,
    device: torch.device | str,
    fold: bool = True,
    compile: bool = False,
    channels_last: bool | None = None,
    bf16: bool | None = None,
) -> InferenceModel:
    """See :func:`resnets.deploy.inference_model` (backend "torch")."""
    dev = resolve_device(device)
    if bf16 and dev.type != "cuda":
        require_cpu_bf16()
    net = fold_bn(model) if fold else copy.deepcopy(model).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    use_cl = resolve_channels_last(channels_last, dev)
    net = net.to(dev).to(memory_format=torch.channels_last) if use_cl else net.to(dev)
    if bf16 is None:
        bf16 = resolve_precision("auto", dev) is not None
    if compile:
        # freezing: the weights are constants of the graph (folded, pre-packed for oneDNN on a CPU), which
        # inference allows (no parameter changes); measured 1.2-1.6x the eager folded model on a CPU
        # (benchmarks/RESULTS.md, `resnets bench --suite deploy --compile`)
        net = torch.compile(net, options={"freezing": True})  # type: ignore[assignment]
    return InferenceModel(net, channels_last=use_cl, autocast_dtype=torch.bfloat16 if bf16 else None)

