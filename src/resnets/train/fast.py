"""Fast training steps: the whole step captured once as a CUDA graph and replayed.

Small networks (the CIFAR ResNets) are bound by kernel launches, not by the kernels: a
CUDA graph replays the forward pass, the loss, the backward pass and the optimizer update
as one launch. :class:`GraphedTrainStep` is a drop-in for the engine's ``train_step``: it
takes ``(x, y)`` and returns ``(loss, correct)`` device tensors.

How it stays correct:

* static input buffers: each call copies the batch into them (shapes must not change;
  the engine's training loaders drop the last partial batch);
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

Nothing here runs on the CPU: building a graphed step there is an error that says so, and
:func:`make_train_step` returns the ordinary eager step instead.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # annotations only: no import cycle with the engine
    from resnets.runtime import Runtime
    from resnets.train.state import TrainState

StepFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]  # (x (N, C, H, W), y (N,)) -> (loss, correct)


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


# -- the step body shared by eager and graphed steps ------------------------------------------
@dataclass
class StepSpec:
    model: nn.Module  # the module that runs (possibly compiled); parameters shared with the optimizer
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False
    grad_clip: float | None = None

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        # the weight-cast cache must be off under graph capture (casts are replayed instead)
        return torch.autocast(device_type=device.type, dtype=self.autocast_dtype, cache_enabled=False)

    def body(self, x: Tensor, y: Tensor, *, zero_grad: bool) -> tuple[Tensor, Tensor]:
        """Forward, loss, backward, update on x (N, C, H, W), y (N,); returns (loss, correct)."""
        with self.autocast(x.device):
            logits = self.model(x)  # (N, K)
        loss = self.loss_fn(logits.float(), y)
        if zero_grad:
            self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        correct = (logits.detach().argmax(dim=1) == y).sum()
        return loss.detach(), correct

    def prepare(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


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
        if x.device.type != "cuda" or not torch.cuda.is_available():
            raise ValueError(
                f"CUDA graphs need a batch on a CUDA device (got {x.device}); on the CPU use the eager step "
                "(resnets.train.fast.make_train_step(..., cuda_graphs=False))"
            )
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps={warmup_steps} must be >= 1 (the optimizer state must exist before capture)")
        check_capturable(optimizer)
        self.spec = StepSpec(model=model, optimizer=optimizer, loss_fn=loss_fn, autocast_dtype=autocast_dtype,
                             channels_last=channels_last, grad_clip=grad_clip)
        self.static_x = self.spec.prepare(x.detach().clone())  # (N, C, H, W)
        self.static_y = y.detach().clone()  # (N,)
        self.lr = TensorLR(optimizer, device=x.device)
        saved = snapshot(model, optimizer)
        with self.lr.installed():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*capturable=True.*")  # warm-up runs uncaptured
                for _ in range(warmup_steps):
                    self.spec.body(self.static_x, self.static_y, zero_grad=True)
            torch.cuda.current_stream().wait_stream(side)
            # grads set to None: backward allocates them from the graph's pool, then rewrites them
            optimizer.zero_grad(set_to_none=True)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):  # loader threads may run
                self.static_loss, self.static_correct = self.spec.body(self.static_x, self.static_y, zero_grad=False)
        restore(model, optimizer, saved)
        torch.cuda.synchronize()

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(x (N, C, H, W), y (N,)) -> (loss, correct): fresh tensors, safe to keep across steps."""
        if x.shape != self.static_x.shape or y.shape != self.static_y.shape:
            raise ValueError(
                f"a graphed step runs one batch shape, captured as {tuple(self.static_x.shape)}; got {tuple(x.shape)}. "
                "Drop the last partial batch (training loaders do) or rebuild the step for the new shape"
            )
        self.lr.sync()
        self.static_x.copy_(x, non_blocking=True)
        self.static_y.copy_(y, non_blocking=True)
        self.graph.replay()
        return self.static_loss.clone(), self.static_correct.clone()


def eager_step(spec: StepSpec) -> StepFn:
    """The ordinary step as a function of the batch (what the engine's ``train_step`` does)."""

    def step(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return spec.body(spec.prepare(x), y, zero_grad=True)

    return step


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
    """A graphed step when ``cuda_graphs`` and the batch is on CUDA, else the eager step."""
    spec = StepSpec(model=model, optimizer=optimizer, loss_fn=loss_fn, autocast_dtype=autocast_dtype,
                    channels_last=channels_last, grad_clip=grad_clip)
    if cuda_graphs and sample_batch[0].device.type == "cuda":
        return GraphedTrainStep(model, optimizer, loss_fn, sample_batch, autocast_dtype=autocast_dtype,
                                channels_last=channels_last, grad_clip=grad_clip)
    return eager_step(spec)


def engine_step_fn(
    state: "TrainState",
    runtime: "Runtime",
    *,
    loss_fn: nn.Module,
    grad_clip: float | None,
    sample_batch: tuple[Tensor, Tensor],
    cuda_graphs: bool,
) -> StepFn | None:
    """For ``fit(..., step_fn=...)``: the engine's step captured as a CUDA graph when
    ``cuda_graphs`` and the runtime is on CUDA (``state.step_model`` and ``state.optimizer``,
    the runtime's precision and layout), else None (``fit`` then runs its eager step).

    ``sample_batch`` is one training batch of the loader's shape (e.g. the first one).
    """
    if not cuda_graphs or runtime.device.type != "cuda":
        return None
    if runtime.world_size > 1:
        raise ValueError(
            "CUDA graphs of the whole step are single-process only (the gradient all-reduce is not captured); "
            "turn CUDA graphs off for distributed runs"
        )
    return GraphedTrainStep(
        state.step_model, state.optimizer, loss_fn, sample_batch, autocast_dtype=runtime.autocast_dtype,
        channels_last=runtime.channels_last, grad_clip=grad_clip,
    )


__all__ = [
    "GraphedTrainStep",
    "Snapshot",
    "StepFn",
    "StepSpec",
    "TensorLR",
    "check_capturable",
    "eager_step",
    "engine_step_fn",
    "make_train_step",
    "restore",
    "snapshot",
]
