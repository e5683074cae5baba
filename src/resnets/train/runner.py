"""The library entry point: ``run(cfg)`` trains one configuration end to end.

:func:`~resnets.train.assemble.prepare_run` (data, model, optimizer, schedule, state, step)
-> run directory (or the one being resumed) -> ``fit`` -> the test set, once, with the best
validation weights (or the final ones when there is no validation split).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from resnets.data import DataBundle
from resnets.io.checkpoint import json_meta, load_checkpoint
from resnets.io.environment import environment
from resnets.runtime import Runtime
from resnets.train.assemble import prepare_run
from resnets.train.banner import start_banner
from resnets.train.config import TrainConfig, validate
from resnets.train.configio import dump_config
from resnets.train.distributed import broadcast_object, broadcast_tensors, eval_module, with_run_dir
from resnets.train.engine import fit
from resnets.train.evaluate import evaluate
from resnets.train.network import options_json
from resnets.train.resume import resume_path
from resnets.train.rundir.log import RunLog, new_run_dir
from resnets.train.runtime import determinism, make_runtime, seed_everything
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
    already_complete: bool = False  # a resumed run that had no step left (its results are its final.json)


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
        num_classes=int(cast(int, model.num_classes)),
        in_chans=int(cast(int, model.in_chans)),
        classes=list(bundle.classes),
        mean=list(bundle.mean),
        std=list(bundle.std),
        image_size=int(bundle.image_size),
        crop_fraction=float(getattr(bundle, "crop_fraction", 1.0)),
        config=dump_config(cfg),
    )


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


def _complete(state: TrainState, bundle: DataBundle, *, run_dir: Path | None, started: float) -> RunResult:
    """The result of resuming a run that had already finished: its saved results, nothing recomputed."""
    final = run_dir / "final.json" if run_dir is not None else None
    saved = json.loads(final.read_text()) if final is not None and final.is_file() else {}
    return RunResult(
        run_dir=run_dir, step=state.step, total_steps=state.total_steps, losses=[], first_step=state.step,
        best_val_acc=saved.get("best_val_acc", state.best_val_acc if bundle.val is not None else None),
        test=saved.get("test"), elapsed_s=time.perf_counter() - started, model=state.model, already_complete=True,
    )


def run(
    cfg: TrainConfig,
    *,
    device: torch.device | str | None = None,
    quiet: bool = False,
    runtime: Runtime | None = None,
    stop_after: int | None = None,
    notes: Sequence[str] = (),
) -> RunResult:
    """Train ``cfg`` (resuming when ``train.resume`` says so); ``stop_after`` ends early at that
    step with a resumable checkpoint, as an interruption would. Unless ``quiet``, the main process
    prints what it is about to do (with ``notes``, e.g. on how the recipe was changed), then progress."""
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
        talk = runtime.is_main and not quiet
        if talk:  # loading the data can take a while: say what is being prepared first
            print(f"preparing {cfg.model.name} on {cfg.data.name} ({runtime.device}) ...", flush=True)
        prepared = prepare_run(cfg, runtime, resume=resume)
        bundle, state = prepared.bundle, prepared.state
        assert bundle is not None  # loaded from cfg.data
        report = prepared.finetune_report
        if report is not None and runtime.is_main:  # also with quiet: what was loaded is not progress
            print("\n".join(report.lines()), flush=True)
        log = _open_log(cfg, runtime, resume, state.step)
        runtime = with_run_dir(runtime, log.dir if log is not None else None)
        if talk:
            print("\n".join(start_banner(cfg, bundle, state, runtime, run_dir=runtime.run_dir,
                                         resumed=resume is not None, notes=list(notes))), flush=True)
        if state.step >= state.total_steps and resume is not None:  # nothing left: report, keep its results
            if log is not None:
                log.close()
            return _complete(state, bundle, run_dir=runtime.run_dir, started=started)
        try:
            out = fit(
                state, train=bundle.train, val=bundle.val, loop=cfg.train, loss_fn=prepared.loss_fn,
                grad_clip=cfg.optim.grad_clip, runtime=runtime, log=log,
                metadata=checkpoint_metadata(cfg, bundle, state.model, world_size=runtime.world_size),
                quiet=quiet, stop_after=stop_after,
                step_fn=prepared.step_fn(),
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
