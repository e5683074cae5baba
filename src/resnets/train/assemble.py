"""One function assembles a run: :func:`prepare_run` turns a validated :class:`TrainConfig` and a
:class:`~resnets.runtime.Runtime` into what training, evaluation, the studies and the benchmark
need: the data, the model (resumed, fine-tuned, frozen, placed), the optimizer and the
learning-rate schedule (one base rate, scaled once), the training state and the step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from resnets.data import DataBundle, load_data
from resnets.io.checkpoint import Checkpoint, apply_weights, load_checkpoint
from resnets.runtime import Runtime
from resnets.train import engine
from resnets.train.config import TrainConfig
from resnets.train.cuda_graphs import graphed_step
from resnets.train.distributed import check_resume_batch, sync_batchnorm
from resnets.train.finetune import FinetuneReport, freeze, load_finetune_source
from resnets.train.network import model_from_config
from resnets.train.optim import build_optimizer
from resnets.train.resume import check_resume_config
from resnets.train.schedule import lr_at, resolve_schedule
from resnets.train.state import TrainState
from resnets.train.step import StepFn

ModelFn = Callable[[TrainConfig, "DataBundle | None"], nn.Module]


def build_model(cfg: TrainConfig, bundle: DataBundle | None) -> nn.Module:
    """The configured network from the registry, sized for ``bundle`` unless the config fixes
    classes/channels."""
    m = cfg.model
    num_classes = m.num_classes if m.num_classes is not None or bundle is None else bundle.num_classes
    in_chans = m.in_chans if m.in_chans is not None or bundle is None else bundle.in_chans
    if num_classes is None or in_chans is None:
        raise ValueError("model.num_classes and model.in_chans must be set when the run has no dataset")
    return model_from_config(m, num_classes=num_classes, in_chans=in_chans)


def base_lr(cfg: TrainConfig, world_size: int) -> float:
    """``optim.lr``, scaled by the global batch over ``optim.lr_reference_batch`` when that is set."""
    ref = cfg.optim.lr_reference_batch
    return cfg.optim.lr * (cfg.data.batch_size * world_size / ref if ref else 1.0)


@dataclass
class PreparedRun:
    """What a run needs, assembled by :func:`prepare_run`."""

    cfg: TrainConfig
    runtime: Runtime
    bundle: DataBundle | None
    state: TrainState
    loss_fn: nn.Module
    checkpoint: Checkpoint | None = None  # the resumed checkpoint, if any
    finetune_report: FinetuneReport | None = None  # what ``finetune.source`` loaded, initialised, froze

    @property
    def model(self) -> nn.Module:
        return self.state.model

    def step_fn(self, sample_batch: tuple[Tensor, Tensor] | None = None) -> StepFn:
        """The training step: captured as a CUDA graph when ``train.cuda_graphs`` and the runtime is
        on CUDA (``sample_batch``, default the first training batch, fixes its shape), else the
        engine's eager step."""
        graphed = graphed_step(self.state.step_model, self.state.optimizer, self.runtime, loss_fn=self.loss_fn,
                               grad_clip=self.cfg.optim.grad_clip, sample_batch=sample_batch or self._first_batch,
                               cuda_graphs=self.cfg.train.cuda_graphs)
        if graphed is not None:
            return graphed
        state, runtime, loss_fn, clip = self.state, self.runtime, self.loss_fn, self.cfg.optim.grad_clip

        def eager(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
            return engine.train_step(state, x, y, loss_fn=loss_fn, runtime=runtime, grad_clip=clip)

        return explain_compile_failure(eager, device=runtime.device) if self.cfg.train.compile else eager

    def _first_batch(self) -> tuple[Tensor, Tensor]:
        if self.bundle is None:
            raise ValueError("a graphed step needs a sample batch when the run has no dataset")
        return next(iter(self.bundle.train.epoch(0)))  # (x, y) of the loader's fixed shape


COMPILER_MODULES = ("torch._dynamo", "torch._inductor")  # where torch.compile's own errors come from


def explain_compile_failure(step: StepFn, *, device: torch.device) -> StepFn:
    """``step`` (its model compiled) with a failure of torch.compile, which happens on the first
    call (e.g. no C++ compiler for the CPU code), turned into one line naming the fix."""

    def step_or_explain(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        try:
            return step(x, y)
        except Exception as exc:
            if not type(exc).__module__.startswith(COMPILER_MODULES):
                raise
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = (lines[0] if lines else type(exc).__name__)[:300]
            raise ValueError(f"train.compile=true: torch.compile could not build the training step on {device.type} "
                             f"({reason}); install what it names (for the CPU: a C++ compiler such as g++) or set "
                             "train.compile=false") from None

    return step_or_explain


def _load_weights(
    model: nn.Module, cfg: TrainConfig, runtime: Runtime, *, resume: Path | None, weights: Path | None
) -> tuple[Checkpoint | None, FinetuneReport | None]:
    """The resumed checkpoint's weights (after checking that the resume may continue it), an
    evaluated checkpoint's weights, or the fine-tuning source's; what was loaded."""
    if resume is not None:
        ckpt = load_checkpoint(resume)
        if ckpt.state is None:
            raise FileNotFoundError(f"{resume} has no training state (.state.pt) next to it; resume from 'last'")
        check_resume_config(cfg, ckpt, path=resume)
        check_resume_batch(ckpt.metadata, batch_size=cfg.data.batch_size, world_size=runtime.world_size, path=resume)
        apply_weights(model, ckpt, path=resume)
        return ckpt, None
    if weights is not None:
        apply_weights(model, load_checkpoint(weights, with_state=False), path=weights)
        return None, None
    if cfg.finetune.source:
        return None, load_finetune_source(model, cfg.finetune.source)
    return None, None


def prepare_run(
    cfg: TrainConfig,
    runtime: Runtime,
    *,
    bundle: DataBundle | None | Literal["load"] = "load",
    model_fn: ModelFn | None = None,
    resume: Path | None = None,
    weights: Path | None = None,
) -> PreparedRun:
    """Data, model, optimizer, schedule, state and step of ``cfg`` on ``runtime``.

    bundle: "load" reads ``cfg.data`` (this rank's shard); a bundle is used as it is; None: a run
        without a dataset (one step per epoch, e.g. the benchmark's fixed batches).
    model_fn: builds the untrained network (default: the registry's ``cfg.model``).
    resume: a checkpoint whose weights and training state are restored (``train.resume``).
    weights: a checkpoint whose weights only are loaded (evaluation).
    """
    data: DataBundle | None
    if isinstance(bundle, str):  # "load"
        data = load_data(cfg.data, device=runtime.device, rank=runtime.rank, world_size=runtime.world_size)
    else:
        data = bundle
    model = (model_fn or build_model)(cfg, data)
    ckpt, report = _load_weights(model, cfg, runtime, resume=resume, weights=weights)
    if cfg.train.sync_bn and runtime.world_size > 1:
        model = sync_batchnorm(model, device=runtime.device)  # before freeze: it lists BN layers of the stem
    frozen = freeze(model, cfg.finetune.freeze_stages)
    if report is not None:
        report.frozen = [name for name, child in model.named_children()
                         if any(child is f for f in frozen) and any(True for _ in child.parameters())]
    runtime.place(model)
    spe = len(data.train) if data is not None else 1
    total = cfg.train.iterations if cfg.train.iterations is not None else cfg.train.epochs * spe  # type: ignore[operator]
    schedule = resolve_schedule(cfg.schedule, base_lr=base_lr(cfg, runtime.world_size), steps_per_epoch=spe,
                                total_steps=total)
    # the optimizer starts at the schedule's first rate (set_lr writes it again every step)
    optimizer = build_optimizer(model, cfg.optim, device=runtime.device, lr=lr_at(0, schedule))
    step_model: nn.Module = model
    if cfg.train.compile:
        step_model = torch.compile(model)  # type: ignore[assignment]
    if runtime.wrap is not None:
        step_model = runtime.wrap(step_model)
    state = TrainState(model=model, step_model=step_model, optimizer=optimizer, schedule=schedule,
                       steps_per_epoch=spe, frozen=frozen)
    if ckpt is not None:
        state.load_state_dict(ckpt.state)  # type: ignore[arg-type]
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.train.label_smoothing)
    return PreparedRun(cfg=cfg, runtime=runtime, bundle=data, state=state, loss_fn=loss_fn, checkpoint=ckpt,
                       finetune_report=report)


__all__ = ["ModelFn", "PreparedRun", "base_lr", "build_model", "explain_compile_failure", "prepare_run"]
