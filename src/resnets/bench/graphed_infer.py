"""Inference replayed from a CUDA graph: one launch per batch of a fixed shape."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class GraphedForward:
    """``module(x)`` captured for the shape of ``sample`` (N, C, H, W); other shapes run eagerly.

    The module must not need gradients (an :class:`resnets.deploy.InferenceModel`, or any
    module called under ``no_grad``). Returns a fresh tensor per call.
    """

    def __init__(self, module: nn.Module, sample: Tensor, *, warmup_steps: int = 3) -> None:
        if sample.device.type != "cuda" or not torch.cuda.is_available():
            raise ValueError(f"CUDA graphs need a CUDA input (got {sample.device}); call the module directly on the CPU")
        self.module = module
        self.static_x = sample.detach().clone()  # (N, C, H, W)
        with torch.no_grad():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(warmup_steps):
                    module(self.static_x)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):  # loader threads may run
                self.static_out = module(self.static_x)  # (N, K)
        torch.cuda.synchronize()

    def __call__(self, x: Tensor) -> Tensor:
        if x.shape != self.static_x.shape:
            with torch.no_grad():
                return self.module(x)
        self.static_x.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.static_out.clone()


__all__ = ["GraphedForward"]
