"""CUDA graphs: a call captured once and replayed as one launch, for training and inference.

Small networks (the CIFAR ResNets) are bound by kernel launches, not by the kernels: a CUDA
graph replays the forward pass (and for training the loss, the backward pass and the
optimizer update) as one launch. :class:`CudaGraph` is the one capture helper: warm-up calls
on a side stream, one captured call, static input buffers that each replay copies the batch
into. What happens to another batch shape is the caller's explicit choice (``other_shapes``):
the training step refuses it (the engine's training loaders drop the last partial batch), the
inference forward runs it eagerly.

:class:`GraphedTrainStep` is a drop-in for the engine's step: it takes ``(x, y)`` and returns
``(loss, correct)`` device tensors. How it stays correct:

* the learning rate lives in a device tensor per parameter group that the captured
  optimizer kernels read, so a schedule that writes ``group["lr"]`` (``set_lr``) still
  works: each call copies a changed value into the tensor. This needs an optimizer whose
  step reads a tensor learning rate without a host sync: ``fused=True`` (SGD, Adam, AdamW)
  or ``capturable=True`` (Adam, AdamW);
* warm-up steps (needed before capture) would change the weights, BN statistics and
  optimizer state: they are snapshot first and restored after capture, and optimizer state
  that the warm-up created is zeroed, which is what a fresh state means for SGD (zero
  momentum, dampening 0) and Adam (step 0, zero moments). Building the step therefore
  leaves the model and the optimizer as they were.

Nothing here runs on the CPU: capturing there is an error that says so, and
:func:`graphed_step` (the one place that chooses between eager and graphed steps) returns
None off CUDA, where the engine runs its eager step.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from resnets.runtime import Runtime
from resnets.train.step import StepFn, step_body

OTHER_SHAPES: tuple[str, ...] = ("eager", "error")


# -- state snapshots (pure torch, CPU-testable) ---------------------------------------------
@dataclass
class Snapshot:
    """Copies of a model's parameters and buffers and of an optimizer's per-parameter state."""

    tensors: dict[str, Tensor]
    optim_state: dict[int, dict[str, Any]]  # id(param) -> copy of its state


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> Snapshot:
    tensors = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    optim_state = {
        id(p): {k: v.detach().clone() if isinstance(v, Tensor) else v for k, v in s.items()}
        for p, s in optimizer.state.items()
    }
    return Snapshot(tensors=tensors, optim_state=optim_state)


@torch.no_grad()
def restore(model: nn.Module, optimizer: torch.optim.Optimizer, saved: Snapshot) -> None:
    """Put back what :func:`snapshot` saved, in place (tensor addresses, which a graph uses, stay).

    Optimizer state created after the snapshot is zeroed (a fresh state for SGD and Adam).
    """
    for k, v in model.state_dict(keep_vars=True).items():
        v.detach().copy_(saved.tensors[k])
    for p, state in optimizer.state.items():
        before = saved.optim_state.get(id(p), {})
        for key, value in state.items():
            if key in before and isinstance(value, Tensor):
                value.copy_(before[key])
            elif key in before:
                state[key] = before[key]
            elif isinstance(value, Tensor):
                value.zero_()


# -- the learning rate as a device tensor ---------------------------------------------------
def check_capturable(optimizer: torch.optim.Optimizer) -> None:
    """Make every group's step capturable with a tensor learning rate, or raise.

    SGD needs ``fused=True``; Adam and AdamW need ``capturable=True``, which is switched on
    here for fused ones (their state already lives on the device).
    """
    for i, group in enumerate(optimizer.param_groups):
        if "capturable" in group:
            if not group["capturable"] and group.get("fused"):
                group["capturable"] = True
            ok = bool(group["capturable"])
        else:
            ok = bool(group.get("fused"))
        if not ok:
            raise ValueError(
                f"{type(optimizer).__name__} parameter group {i} cannot be captured in a CUDA graph with a changing "
                "learning rate (its step would read the rate on the host); build the optimizer with fused=True "
                "(resnets.train.optim.build_optimizer does on CUDA) or, for Adam/AdamW, capturable=True"
            )


class TensorLR:
    """Each group's learning rate mirrored in a 0-d device tensor that captured kernels read."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, device: torch.device) -> None:
        self.optimizer = optimizer
        self.values = [float(g["lr"]) for g in optimizer.param_groups]
        self.tensors = [torch.tensor(v, dtype=torch.float32, device=device) for v in self.values]

    @contextlib.contextmanager
    def installed(self) -> Any:
        """Within: ``group["lr"]`` is the tensor (for capture). After: the float again."""
        for g, t in zip(self.optimizer.param_groups, self.tensors):
            g["lr"] = t
        try:
            yield
        finally:
            for g, v in zip(self.optimizer.param_groups, self.values):
                g["lr"] = v

    def sync(self) -> None:
        """Copy a changed ``group["lr"]`` (written by ``set_lr``) into its tensor; no host sync."""
        for i, g in enumerate(self.optimizer.param_groups):
            lr = g["lr"]
            if not isinstance(lr, Tensor) and float(lr) != self.values[i]:
                self.values[i] = float(lr)
                self.tensors[i].fill_(self.values[i])


# -- the one capture helper -------------------------------------------------------------------
class CudaGraph:
    """``fn(*inputs)`` captured once for the shapes of ``sample`` and replayed per call.

    ``fn(*inputs, capturing=...)`` returns a tuple of tensors; it runs ``warmup_steps`` times
    uncaptured on a side stream (``capturing=False``), ``before_capture`` runs, then one call
    is captured (``capturing=True``). A call with other shapes runs ``fn`` eagerly when
    ``other_shapes="eager"`` and is refused when ``"error"``. Outputs are fresh tensors.
    """

    def __init__(
        self,
        fn: Callable[..., tuple[Tensor, ...]],
        sample: tuple[Tensor, ...],
        *,
        other_shapes: str,
        warmup_steps: int = 3,
        before_capture: Callable[[], None] | None = None,
    ) -> None:
        device = sample[0].device
        if device.type != "cuda" or not torch.cuda.is_available():
            raise ValueError(
                f"CUDA graphs need inputs on a CUDA device (got {device}); on the CPU run the step or the "
                "module eagerly (train.cuda_graphs=false, graphs='off')"
            )
        if other_shapes not in OTHER_SHAPES:
            raise ValueError(f"other_shapes={other_shapes!r} is not one of {list(OTHER_SHAPES)}")
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps={warmup_steps} must be >= 1 (lazily created state must exist before capture)")
        self.fn = fn
        self.other_shapes = other_shapes
        self.static = tuple(t.detach().clone() for t in sample)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup_steps):
                fn(*self.static, capturing=False)
        torch.cuda.current_stream().wait_stream(side)
        if before_capture is not None:
            before_capture()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):  # loader threads may run
            self.outputs = fn(*self.static, capturing=True)
        torch.cuda.synchronize()

    def __call__(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        if any(x.shape != s.shape for x, s in zip(inputs, self.static)):
            if self.other_shapes == "eager":
                return self.fn(*inputs, capturing=False)
            raise ValueError(
                f"a CUDA graph replays one batch shape, captured as {tuple(self.static[0].shape)}; got "
                f"{tuple(inputs[0].shape)}. Drop the last partial batch (training loaders do) or capture again "
                "for the new shape"
            )
        for s, x in zip(self.static, inputs):
            s.copy_(x, non_blocking=True)
        self.graph.replay()
        return tuple(o.clone() for o in self.outputs)


# -- training ----------------------------------------------------------------------------------
class GraphedTrainStep:
    """One training step captured as a CUDA graph; call it like the engine's step.

    >>> step = GraphedTrainStep(model, optimizer, loss_fn, (x0, y0), autocast_dtype=torch.bfloat16)
    >>> loss, correct = step(x, y)   # same shapes as (x0, y0); set_lr between calls is honoured
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: nn.Module,
        sample_batch: tuple[Tensor, Tensor],
        *,
        autocast_dtype: torch.dtype | None = None,
        channels_last: bool = False,
        grad_clip: float | None = None,
        warmup_steps: int = 3,
    ) -> None:
        x, y = sample_batch
        self.runtime = Runtime(device=x.device, autocast_dtype=autocast_dtype, channels_last=channels_last)
        if x.device.type == "cuda" and torch.cuda.is_available():
            check_capturable(optimizer)
        self.lr = TensorLR(optimizer, device=x.device)

        def body(xs: Tensor, ys: Tensor, *, capturing: bool) -> tuple[Tensor, Tensor]:
            # grads set to None before capture: backward allocates them from the graph's pool
            return step_body(model, optimizer, xs, ys, loss_fn=loss_fn, runtime=self.runtime, grad_clip=grad_clip,
                             zero_grad=not capturing, capture=True)

        saved = snapshot(model, optimizer)
        with self.lr.installed(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*capturable=True.*")  # warm-up runs uncaptured
            self.graph = CudaGraph(body, (self.runtime.prepare(x), y), other_shapes="error",
                                   warmup_steps=warmup_steps, before_capture=lambda: optimizer.zero_grad(set_to_none=True))
        restore(model, optimizer, saved)
        torch.cuda.synchronize()

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(x (N, C, H, W), y (N,)) -> (loss, correct): fresh tensors, safe to keep across steps."""
        self.lr.sync()
        loss, correct = self.graph(x, y)
        return loss, correct


def graphed_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    runtime: Runtime,
    *,
    loss_fn: nn.Module,
    grad_clip: float | None,
    sample_batch: tuple[Tensor, Tensor] | Callable[[], tuple[Tensor, Tensor]],
    cuda_graphs: bool,
) -> StepFn | None:
    """The one choice between steps: the step captured as a CUDA graph when ``cuda_graphs`` and
    the runtime is on CUDA (in the runtime's precision and layout), else None (the eager step).

    ``sample_batch`` is one training batch of the loader's shape (e.g. the first one), or a
    function that returns it (called only when a graph is captured).
    """
    if not cuda_graphs or runtime.device.type != "cuda":
        return None
    if runtime.world_size > 1:
        raise ValueError(
            "CUDA graphs of the whole step are single-process only (the gradient all-reduce is not captured); "
            "turn CUDA graphs off for distributed runs"
        )
    sample = sample_batch() if callable(sample_batch) else sample_batch
    return GraphedTrainStep(model, optimizer, loss_fn, sample, autocast_dtype=runtime.autocast_dtype,
                            channels_last=runtime.channels_last, grad_clip=grad_clip)


def make_train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    sample_batch: tuple[Tensor, Tensor],
    *,
    cuda_graphs: bool,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    grad_clip: float | None = None,
) -> StepFn:
    """A callable step of a bare model and optimizer: :func:`graphed_step`, else the eager step body."""
    runtime = Runtime(device=sample_batch[0].device, autocast_dtype=autocast_dtype, channels_last=channels_last)
    graphed = graphed_step(model, optimizer, runtime, loss_fn=loss_fn, grad_clip=grad_clip,
                           sample_batch=sample_batch, cuda_graphs=cuda_graphs)
    if graphed is not None:
        return graphed

    def eager(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return step_body(model, optimizer, runtime.prepare(x), y, loss_fn=loss_fn, runtime=runtime,
                         grad_clip=grad_clip)

    return eager


# -- inference ---------------------------------------------------------------------------------
class GraphedForward:
    """``module(x)`` captured for the shape of ``sample`` (N, C, H, W); other shapes run eagerly.

    The module must not need gradients (an :class:`resnets.deploy.InferenceModel`, or any
    module called under ``no_grad``). Returns a fresh tensor per call.
    """

    def __init__(self, module: nn.Module, sample: Tensor, *, warmup_steps: int = 3) -> None:
        self.module = module

        def forward(x: Tensor, *, capturing: bool) -> tuple[Tensor]:
            with torch.no_grad():
                return (module(x),)  # (N, K)

        self.graph = CudaGraph(forward, (sample,), other_shapes="eager", warmup_steps=warmup_steps)

    def __call__(self, x: Tensor) -> Tensor:
        return self.graph(x)[0]


__all__ = [
    "CudaGraph",
    "GraphedForward",
    "GraphedTrainStep",
    "Snapshot",
    "TensorLR",
    "check_capturable",
    "graphed_step",
    "make_train_step",
    "restore",
    "snapshot",
]
