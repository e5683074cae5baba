"""The library entry point: ``run(cfg)`` trains one configuration end to end.

Data -> model (fine-tuning source, frozen stages) -> optimizer and schedule -> run
directory (or the one being resumed) -> ``fit`` -> the test set, once, with the best
validation weights (or the final ones when there is no validation split).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnets.data import DataBundle, load_data
from resnets.train.checkpoint import Checkpoint, apply_weights, json_meta, load_checkpoint, resolve_checkpoint
from resnets.train.config import TrainConfig, validate
from resnets.train.configio import changed_keys, config_from_mapping, dump_config, flatten, load_yaml, to_dict
from resnets.train.distributed import (
    broadcast_object, broadcast_tensors, check_resume_batch, eval_module, sync_batchnorm, with_run_dir,
)
from resnets.train.engine import StepFn, fit
from resnets.train.fast import engine_step_fn
from resnets.train.evaluate import evaluate
from resnets.train.model import model_from_config, options_json
from resnets.train.finetune import FinetuneReport, freeze, load_finetune_source
from resnets.train.optim import build_optimizer
from resnets.train.runlog import RunLog, environment, latest_run_dir, new_run_dir
from resnets.train.runtime import Runtime, determinism, make_runtime, seed_everything
from resnets.train.schedule import resolve_schedule
from resnets.train.state import TrainState


@dataclass
class RunResult:
    run_dir: Path | None
    step: int
    total_steps: int
    losses: list[float]  # per-step training losses of the steps run by this call
    first_step: int  # the step ``losses[0]`` belongs to
    best_val_acc: float | None
    test: dict[str, float] | None
    elapsed_s: float
    model: nn.Module = field(repr=False)  # the unwrapped module, with the weights the test used
    evals: list[dict[str, float]] = field(default_factory=list, repr=False)


def build_model(cfg: TrainConfig, bundle: DataBundle) -> nn.Module:
    """The configured network, sized for ``bundle`` unless the config fixes classes/channels."""
    m = cfg.model
    return model_from_config(
        m,
        num_classes=m.num_classes if m.num_classes is not None else bundle.num_classes,
        in_chans=m.in_chans if m.in_chans is not None else bundle.in_chans,
    )


def checkpoint_metadata(
    cfg: TrainConfig, bundle: DataBundle, model: nn.Module, *, world_size: int = 1
) -> dict[str, str]:
    """What ``predict``/``eval`` need to rebuild the model and its input transform, and the
    global batch (``data.batch_size`` is per process) that a resume must keep."""
    return json_meta(
        world_size=world_size,
        global_batch=cfg.data.batch_size * world_size,
        model=cfg.model.name,
        model_options=options_json(cfg.model),
        num_classes=int(model.num_classes),
        in_chans=int(model.in_chans),
        classes=list(bundle.classes),
        mean=list(bundle.mean),
        std=list(bundle.std),
        image_size=int(bundle.image_size),
        crop_fraction=float(getattr(bundle, "crop_fraction", 1.0)),
        config=dump_config(cfg),
    )


def resume_path(cfg: TrainConfig) -> Path | None:
    """The checkpoint to resume from: ``train.resume`` true (newest run of this name) or a path."""
    resume = cfg.train.resume
    if resume is False:
        return None
    if resume is True:
        return latest_run_dir(cfg.train.out_dir, cfg.run_name) / "last.safetensors"
    path = Path(resume)
    return resolve_checkpoint(path, prefer=("last",))


# Keys a resume may change: how long and how often, and how the step runs. Everything else
# (model, data, optimizer, schedule, seeds) would make the resumed run another run.
RESUME_SAFE: frozenset[str] = frozenset({
    "train.epochs", "train.iterations", "train.eval_every", "train.checkpoint_every", "train.log_every",
    "train.threads", "train.tensorboard", "train.compile", "train.channels_last", "train.cuda_graphs",
    "train.resume", "train.out_dir", "train.name", "data.workers", "data.decode_cache", "data.download",
    "data.root", "data.eval_batch_size",
    "data.batch_size",  # checked against the global batch by check_resume_batch
    "train.sync_bn",  # how BN statistics are gathered across processes; the weights are plain BN
})


def check_resume_config(cfg: TrainConfig, ckpt: Checkpoint, *, path: Path) -> None:
    """Refuse a resume whose configuration differs from the checkpoint's in a key outside
    :data:`RESUME_SAFE`, naming the key (before anything is loaded into the model or written)."""
    if "config" not in ckpt.metadata:
        return
    try:
        saved = config_from_mapping(load_yaml(ckpt.metadata["config"]))
    except ValueError:
        return  # written by another version: the weights check below still applies
    refused = [k for k in changed_keys(saved, cfg) if k not in RESUME_SAFE]
    if refused:
        flat = flatten(to_dict(saved))
        shown = ", ".join(f"{k} (was {flat[k]!r})" for k in refused[:3])
        raise ValueError(
            f"cannot resume {path} with another {shown}: it changes the model, the data or the optimizer; "
            "a resume may change only how long it runs, how often it evaluates, logs and saves, and data.workers. "
            "Drop the override, or start a new run from it with finetune.source=" + str(path.parent)
        )


def _base_lr(cfg: TrainConfig, world_size: int) -> float:
    ref = cfg.optim.lr_reference_batch
    return cfg.optim.lr * (cfg.data.batch_size * world_size / ref if ref else 1.0)


def _setup(
    cfg: TrainConfig, runtime: Runtime, resume: Path | None
) -> tuple[DataBundle, TrainState, Checkpoint | None, FinetuneReport | None]:
    bundle = load_data(cfg.data, device=runtime.device, rank=runtime.rank, world_size=runtime.world_size)
    model = build_model(cfg, bundle)
    ckpt = load_checkpoint(resume) if resume is not None else None
    if ckpt is not None:
        if ckpt.state is None:
            raise FileNotFoundError(f"{resume} has no training state (.state.pt) next to it; resume from 'last'")
        check_resume_config(cfg, ckpt, path=resume)
        check_resume_batch(ckpt.metadata, batch_size=cfg.data.batch_size, world_size=runtime.world_size, path=resume)
        apply_weights(model, ckpt, path=resume)
    report = None
    if ckpt is None and cfg.finetune.source:
        report = load_finetune_source(model, cfg.finetune.source)
    if cfg.train.sync_bn and runtime.world_size > 1:
        model = sync_batchnorm(model, device=runtime.device)  # before freeze: it lists BN layers of the stem
    frozen = freeze(model, cfg.finetune.freeze_stages)
    if report is not None:
        report.frozen = [name for name, child in model.named_children()
                         if any(child is f for f in frozen) and any(True for _ in child.parameters())]
    model.to(runtime.device)
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg.optim, device=runtime.device)
    spe = len(bundle.train)
    total = cfg.train.iterations if cfg.train.iterations is not None else cfg.train.epochs * spe  # type: ignore[operator]
    schedule = resolve_schedule(cfg.schedule, base_lr=_base_lr(cfg, runtime.world_size), steps_per_epoch=spe,
                                total_steps=total)
    step_model: nn.Module = model
    if cfg.train.compile:
        step_model = torch.compile(model)  # type: ignore[assignment]
    if runtime.wrap is not None:
        step_model = runtime.wrap(step_model)
    state = TrainState(model=model, step_model=step_model, optimizer=optimizer, schedule=schedule,
                       steps_per_epoch=spe, frozen=frozen)
    if ckpt is not None:
        state.load_state_dict(ckpt.state)  # type: ignore[arg-type]
    return bundle, state, ckpt, report


def _open_log(cfg: TrainConfig, runtime: Runtime, resume: Path | None, step: int) -> RunLog | None:
    if not runtime.is_main:
        return None
    run_dir = resume.parent if resume is not None else new_run_dir(cfg.train.out_dir, cfg.run_name)
    log = RunLog(run_dir, tensorboard=cfg.train.tensorboard)
    log.write_text("config.yaml", dump_config(cfg))
    log.write_json("env.json", environment(runtime.device))
    log.truncate_metrics(step)
    return log


def _final_test(state: TrainState, bundle: DataBundle, runtime: Runtime, log: RunLog | None) -> tuple[dict[str, Any] | None, str]:
    """The test split, once, with the best validation weights (else the final ones); the main
    rank reads them and broadcasts them, so every rank tests the same weights."""
    weights = "final"
    best = log is not None and bundle.val is not None and (log.dir / "best.safetensors").is_file()
    if broadcast_object(runtime, best):
        if log is not None:
            state.model.load_state_dict(load_checkpoint(log.dir / "best.safetensors", with_state=False).weights)
        broadcast_tensors(runtime, list(state.model.state_dict().values()))
        weights = "best"
    if bundle.test is None:
        return None, weights
    return evaluate(eval_module(state.step_model, runtime), bundle.test, runtime=runtime), weights


def _graphed_step(
    cfg: TrainConfig, state: TrainState, bundle: DataBundle, runtime: Runtime, loss_fn: nn.Module
) -> StepFn | None:
    """The whole step as a CUDA graph when ``train.cuda_graphs`` asks for it (else None: eager)."""
    if not cfg.train.cuda_graphs:
        return None
    sample = next(iter(bundle.train.epoch(0)))  # (x, y) of the loader's fixed batch shape
    return engine_step_fn(state, runtime, loss_fn=loss_fn, grad_clip=cfg.optim.grad_clip,
                          sample_batch=sample, cuda_graphs=True)


def run(
    cfg: TrainConfig,
    *,
    device: torch.device | str | None = None,
    quiet: bool = False,
    runtime: Runtime | None = None,
    stop_after: int | None = None,
) -> RunResult:
    """Train ``cfg`` (resuming when ``train.resume`` says so); ``stop_after`` ends early at that
    step with a resumable checkpoint, as an interruption would."""
    validate(cfg)
    runtime = runtime or make_runtime(cfg.train, device=device)
    if cfg.train.cuda_graphs and runtime.device.type != "cuda":
        raise ValueError(
            f"train.cuda_graphs=true needs a CUDA device, but this run is on {runtime.device}; "
            "set train.cuda_graphs=false"
        )
    if cfg.train.threads is not None:
        torch.set_num_threads(cfg.train.threads)
    started = time.perf_counter()
    with determinism(cfg.train.deterministic):
        seed_everything(cfg.train.seed)
        resume = resume_path(cfg)
        if resume is not None and runtime.is_main and not os.access(resume.parent, os.W_OK):
            raise ValueError(f"cannot resume in {resume.parent}: the run directory is not writable (a resume "
                             "writes its checkpoints there); fix its permissions, or copy it somewhere writable "
                             "and resume the copy")
        bundle, state, _, report = _setup(cfg, runtime, resume)
        if report is not None and runtime.is_main:  # also with quiet: what was loaded is not progress
            print("\n".join(report.lines()), flush=True)
        log = _open_log(cfg, runtime, resume, state.step)
        runtime = with_run_dir(runtime, log.dir if log is not None else None)
        try:
            loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.train.label_smoothing)
            out = fit(
                state, train=bundle.train, val=bundle.val, loop=cfg.train, loss_fn=loss_fn,
                grad_clip=cfg.optim.grad_clip, runtime=runtime, log=log,
                metadata=checkpoint_metadata(cfg, bundle, state.model, world_size=runtime.world_size),
                quiet=quiet, stop_after=stop_after,
                step_fn=_graphed_step(cfg, state, bundle, runtime, loss_fn),
            )
            finished = state.step >= state.total_steps
            test, weights = _final_test(state, bundle, runtime, log) if finished else (None, "final")
            result = RunResult(
                run_dir=log.dir if log else None, step=state.step, total_steps=state.total_steps,
                losses=out.losses, first_step=out.first_step,
                best_val_acc=state.best_val_acc if bundle.val is not None else None, test=test,
                elapsed_s=time.perf_counter() - started, model=state.model, evals=out.evals,
            )
            if log is not None and finished:
                log.write_json("final.json", {
                    "test": test, "weights": weights, "best_val_acc": result.best_val_acc,
                    "best_step": state.best_step, "steps": state.step, "elapsed_s": round(result.elapsed_s, 3),
                    "device": str(runtime.device),
                })
        finally:
            if log is not None:
                log.close()
    return result
