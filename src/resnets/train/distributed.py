"""Data-parallel training over the processes ``torchrun`` starts (one per GPU, or several on a CPU).

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and the rendezvous address);
:func:`launch_env` reads them and :func:`distributed_session` turns them into a
:class:`~resnets.train.runtime.Runtime`: the process group (nccl on CUDA with the device
``cuda:LOCAL_RANK``, gloo on the CPU) and a ``wrap`` that puts the step model in
``DistributedDataParallel``. Everything else here is a small collective the engine needs:
broadcasting rank 0's values, modules and buffers, agreeing on a resume, and a
synchronised batch norm (torch's on CUDA; :class:`GlooSyncBatchNorm` elsewhere).

``data.batch_size`` is per process: the global batch is ``batch_size x world_size``, and the
schedule counts steps of the global batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from resnets.runtime import Runtime, resolve_device
from resnets.train.config import LoopConfig
from resnets.train.runtime import make_runtime

ENV_KEYS: tuple[str, ...] = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
BACKENDS: dict[str, str] = {"cuda": "nccl", "cpu": "gloo"}


@dataclass(frozen=True)
class LaunchEnv:
    """This process's place among those ``torchrun`` started."""

    rank: int
    world_size: int
    local_rank: int


def launch_env(environ: Mapping[str, str] | None = None) -> LaunchEnv | None:
    """torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; None for a plain (single-process) run."""
    environ = os.environ if environ is None else environ
    present = [k for k in ENV_KEYS if k in environ]
    if not present:
        return None
    missing = [k for k in ENV_KEYS if k not in environ]
    if missing:
        raise ValueError(
            f"{', '.join(present)} set but {', '.join(missing)} missing; launch distributed runs with "
            "`torchrun --nproc_per_node=N -m resnets train ...`, or unset these variables for one process"
        )
    env = LaunchEnv(**{k.lower(): int(environ[k]) for k in ENV_KEYS})
    if not 0 <= env.rank < env.world_size:
        raise ValueError(f"RANK={env.rank} must be in [0, WORLD_SIZE={env.world_size})")
    return env if env.world_size > 1 else None


def process_device(env: LaunchEnv, device: str | None) -> torch.device:
    """CUDA: ``cuda:LOCAL_RANK`` (made current); otherwise the CPU."""
    dev = resolve_device(device)
    if dev.type not in BACKENDS:
        raise ValueError(f"distributed training runs on {sorted(BACKENDS)}, not {dev}; pass --device cuda or cpu")
    if dev.type != "cuda":
        return dev
    if dev.index is not None and dev.index != env.local_rank:
        raise ValueError(f"--device {dev} under torchrun: each process uses cuda:LOCAL_RANK; pass --device cuda")
    if env.local_rank >= torch.cuda.device_count():
        raise ValueError(
            f"LOCAL_RANK={env.local_rank} but this node has {torch.cuda.device_count()} GPU(s); "
            "set --nproc_per_node to at most the number of GPUs"
        )
    dev = torch.device("cuda", env.local_rank)
    torch.cuda.set_device(dev)
    return dev


def ddp_wrapper(device: torch.device) -> Callable[[nn.Module], nn.Module]:
    """Wrap the step model in DDP (gradients averaged over ranks; rank 0's weights broadcast at start)."""

    def wrap(module: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    return wrap


@contextlib.contextmanager
def distributed_session(
    loop: LoopConfig, *, env: LaunchEnv, device: str | None = None, timeout_s: float = 1800.0
) -> Iterator[Runtime]:
    """Initialise the process group for ``env`` and yield this rank's runtime; tear down after."""
    dev = process_device(env, device)
    dist.init_process_group(
        BACKENDS[dev.type], init_method="env://", rank=env.rank, world_size=env.world_size,
        timeout=timedelta(seconds=timeout_s),
    )
    try:
        yield make_runtime(loop, device=dev, rank=env.rank, world_size=env.world_size, wrap=ddp_wrapper(dev))
    finally:
        dist.destroy_process_group()


def broadcast_object(runtime: Runtime, value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a small picklable object)."""
    if runtime.world_size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_tensors(runtime: Runtime, tensors: list[torch.Tensor]) -> None:
    """Overwrite ``tensors`` in place with rank 0's values (any memory format)."""
    if runtime.world_size == 1:
        return
    with torch.no_grad():
        for t in tensors:
            buf = t.detach().contiguous()
            dist.broadcast(buf, src=0)
            if buf.data_ptr() != t.data_ptr():
                t.copy_(buf)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (the compiled or plain module), else ``module``."""
    from torch.nn.parallel import DistributedDataParallel

    return module.module if isinstance(module, DistributedDataParallel) else module


def eval_module(step_model: nn.Module, runtime: Runtime) -> nn.Module:
    """What evaluation runs: the unwrapped step model (no collective per batch, so ranks may
    see different batch counts) with rank 0's BN running statistics on every rank."""
    module = unwrap(step_model)
    broadcast_tensors(runtime, list(module.buffers()))
    return module


def check_resume_batch(metadata: Mapping[str, str], *, batch_size: int, world_size: int, path: object) -> None:
    """Refuse to resume where the global batch differs: the step would mean other samples.

    With the same global batch, step k covers the same samples of the same epoch's
    permutation for any number of processes, so the run continues exactly.
    """
    saved = saved_global_batch(metadata)
    now = batch_size * world_size
    if saved is None or saved == now:
        return
    fix = (f"data.batch_size={saved // world_size}" if saved % world_size == 0
           else f"a number of processes that divides {saved}")
    raise ValueError(
        f"{path} was trained with a global batch of {saved} samples per step; this run has "
        f"{world_size} process(es) x data.batch_size={batch_size} = {now}. The schedule and the data "
        f"position count steps of the global batch, so resume with {fix} (global batch {saved})"
    )


def saved_global_batch(metadata: Mapping[str, str]) -> int | None:
    """The checkpoint's global batch (older, single-process checkpoints: their config's batch)."""
    if "global_batch" in metadata:
        return int(metadata["global_batch"])
    if "config" not in metadata:
        return None
    import yaml

    config = yaml.safe_load(metadata["config"]) or {}
    batch = (config.get("data") or {}).get("batch_size")
    return int(batch) if batch is not None else None


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of every rank's input is the sum of the output gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


class GlooSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span every rank's batch, on any device and backend
    (torch's ``SyncBatchNorm`` needs CUDA). Outside a process group it is a plain BatchNorm2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c, dims = x.shape[1], [0, 2, 3]
        local = torch.cat([x.float().sum(dims), x.new_full((1,), x.numel() // c, dtype=torch.float32)])
        total = _AllReduceSum.apply(local)  # (C + 1,) sums and the global count
        count = total[c]
        mean = total[:c] / count  # (C,)
        centred = x.float() - mean.view(1, c, 1, 1)
        var = _AllReduceSum.apply(centred.pow(2).sum(dims)) / count  # (C,) biased
        y = centred * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        if self.track_running_stats:
            self._update_running(mean.detach(), var.detach() * count / (count - 1).clamp_min(1))
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        tracked = self.num_batches_tracked
        assert tracked is not None  # track_running_stats
        tracked.add_(1)
        factor = self.momentum if self.momentum is not None else 1.0 / float(tracked)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)  # type: ignore[union-attr]
        self.running_var.lerp_(unbiased_var.to(self.running_var.dtype), factor)  # type: ignore[union-attr]


def _to_gloo_sync(module: nn.Module) -> nn.Module:
    if type(module) is nn.BatchNorm2d:
        sync = GlooSyncBatchNorm(module.num_features, eps=module.eps, momentum=module.momentum,
                                 affine=module.affine, track_running_stats=module.track_running_stats)
        sync.__dict__.update({k: v for k, v in module.__dict__.items() if k in ("_parameters", "_buffers")})
        sync.train(module.training)
        return sync
    for name, child in module.named_children():
        setattr(module, name, _to_gloo_sync(child))
    return module


def sync_batchnorm(module: nn.Module, *, device: torch.device) -> nn.Module:
    """Batch norm with statistics over the global batch: torch's SyncBatchNorm on CUDA, else
    :class:`GlooSyncBatchNorm`. Parameters and buffers are kept (same state-dict keys)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_gloo_sync(module)


def with_run_dir(runtime: Runtime, run_dir: Any) -> Runtime:
    """``runtime`` with rank 0's run directory known on every rank (for messages; only rank 0 writes)."""
    return dataclasses.replace(runtime, run_dir=broadcast_object(runtime, run_dir))


__all__ = [
    "GlooSyncBatchNorm", "LaunchEnv", "broadcast_object", "broadcast_tensors", "check_resume_batch",
    "distributed_session", "eval_module", "launch_env", "sync_batchnorm", "unwrap", "with_run_dir",
]
