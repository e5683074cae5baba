"""The training loop: ``fit`` runs steps from ``state.step`` to the end of the schedule.

Per-step losses stay on the device and are checked in batches (every ``log_every`` steps
and before every evaluation or checkpoint), so a non-finite loss is always caught before
any weights computed from it are saved.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from resnets.data.bundle import Loader
from resnets.io.checkpoint import save_checkpoint
from resnets.runtime import Runtime
from resnets.train.config import LoopConfig
from resnets.train.distributed import eval_module
from resnets.train.evaluate import evaluate
from resnets.train.interrupt import StopFlag, TrainingInterrupted, stop_signals
from resnets.train.optim import set_lr
from resnets.train.rundir.log import RunLog
from resnets.train.schedule import lr_at
from resnets.train.state import TrainState
from resnets.train.step import StepFn, step_body


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped without saving the spoiled weights."""

    def __init__(self, *, step: int, loss: float, checkpoint: Path | None, saved_step: int) -> None:
        where = (
            f"the last good checkpoint is {checkpoint} (step {saved_step}), left intact"
            if checkpoint is not None and saved_step >= 0
            else "no checkpoint had been written yet"
        )
        super().__init__(
            f"the training loss became {loss} at step {step}; stopped. {where}. "
            "Try a lower learning rate (optim.lr=...), full precision (train.precision=fp32), "
            "gradient clipping (optim.grad_clip=1.0) or a warm-up (schedule.warmup=...)"
        )
        self.step = step


@dataclass
class FitOutput:
    losses: list[float] = field(default_factory=list)  # per-step training loss, from the first step run here
    first_step: int = 0
    evals: list[dict[str, float]] = field(default_factory=list)


def train_step(
    state: TrainState, x: torch.Tensor, y: torch.Tensor, *, loss_fn: nn.Module, runtime: Runtime,
    grad_clip: float | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The eager step on a batch x (N, C, H, W), y (N,): :func:`step_body` of the state's step model."""
    return step_body(state.step_model, state.optimizer, runtime.prepare(x), y, loss_fn=loss_fn, runtime=runtime,
                     grad_clip=grad_clip)


@dataclass
class Rate:
    """Throughput over one window of steps (all processes together): images and steps per second."""

    images_s: float
    steps_s: float

    def __str__(self) -> str:
        return f"{self.images_s:,.0f} img/s, {self.steps_s:.2f} step/s"


# the bar shows one throughput (the postfix's, measured over the same window as img/s), not tqdm's own
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"


@dataclass
class _Pending:
    """Device tensors of the steps not yet checked."""

    losses: list[torch.Tensor] = field(default_factory=list)
    correct: list[torch.Tensor] = field(default_factory=list)
    seen: int = 0
    since: float = field(default_factory=time.perf_counter)
    stop_signum: int | None = None  # a stop signal reached some rank (known to all after a flush)


def _flush(state: TrainState, pending: _Pending, out: FitOutput, *, ckpt_dir: Path | None, runtime: Runtime,
           stop: StopFlag) -> Rate:
    """Move pending per-step values to the host, check them, add them to the window; returns the
    throughput of the steps since the last check.

    Under DDP the losses are averaged over ranks first (one all-reduce per check), so every
    rank sees the global batch's loss and a NaN on any rank stops all of them at the same step;
    the same all-reduce carries the stop signal, so a signal on any rank stops all at one step.
    """
    if not pending.losses:
        return Rate(0.0, 0.0)
    n = len(pending.losses)
    signum = float(stop.signum or 0)
    local = torch.cat([torch.stack(pending.losses).float(), torch.stack(pending.correct).sum().float().view(1),
                       torch.tensor([signum], device=pending.losses[0].device)])
    summed = runtime.all_reduce_sum(local).tolist()  # (n + 2,): per-step losses, correct, stop signals
    if summed[n + 1] > 0:
        pending.stop_signum = stop.signum or int(signal.SIGTERM)
    values = [v / runtime.world_size for v in summed[:n]]
    first = state.step - len(values)
    for i, v in enumerate(values):
        if not math.isfinite(v):
            last = ckpt_dir / "last.safetensors" if ckpt_dir is not None else None
            raise NonFiniteLossError(step=first + i, loss=v, checkpoint=last, saved_step=state.last_saved_step)
    out.losses.extend(values)
    state.window["loss"] += sum(values)
    state.window["steps"] += len(values)
    state.window["correct"] += summed[n]
    state.window["seen"] += pending.seen * runtime.world_size
    elapsed = max(1e-9, time.perf_counter() - pending.since)
    rate = Rate(images_s=pending.seen * runtime.world_size / elapsed, steps_s=n / elapsed)
    pending.losses.clear()
    pending.correct.clear()
    pending.seen, pending.since = 0, time.perf_counter()
    return rate


def _check_weights(state: TrainState, *, ckpt_dir: Path) -> None:
    """Finite losses can still leave non-finite weights (an infinite gradient): never save those."""
    params = [p.detach() for p in state.model.parameters()]
    if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
        raise NonFiniteLossError(step=state.step - 1, loss=float("nan"), checkpoint=ckpt_dir / "last.safetensors",
                                 saved_step=state.last_saved_step)


def _due(state: TrainState, loop: LoopConfig, *, stop_after: int | None) -> tuple[bool, bool, bool]:
    """(evaluate now, checkpoint now, stop now) after the step just taken."""
    step, done = state.step, state.step >= state.total_steps or state.step == stop_after
    epoch_end = step % state.steps_per_epoch == 0
    do_eval = (step % loop.eval_every == 0) if loop.eval_every else epoch_end
    do_eval = do_eval or state.step >= state.total_steps
    do_ckpt = (step % loop.checkpoint_every == 0) if loop.checkpoint_every else do_eval
    return do_eval, do_ckpt or done, done


def _eval_and_log(
    state: TrainState, val: Loader | None, *, runtime: Runtime, log: RunLog | None, ckpt_dir: Path | None,
    metadata: dict[str, str], started: float, bar: tqdm, quiet: bool,
) -> dict[str, float]:
    w = state.window
    record: dict[str, float] = {
        "epoch": round(state.step / state.steps_per_epoch, 4),
        "step": state.step,
        "lr": lr_at(state.step - 1, state.schedule),
        "train_loss": w["loss"] / max(1.0, w["steps"]),
        "train_acc": w["correct"] / max(1.0, w["seen"]),
    }
    if val is not None:
        result = evaluate(eval_module(state.step_model, runtime), val, runtime=runtime)
        record.update({f"val_{k}": v for k, v in result.items() if k != "samples"})
        # Best on validation accuracy; ties (frequent on small validation sets) go to the lower loss.
        if (result["acc"], -result["loss"]) > (state.best_val_acc, -state.best_val_loss):
            state.best_val_acc, state.best_val_loss, state.best_step = result["acc"], result["loss"], state.step
            if ckpt_dir is not None:
                save_checkpoint(ckpt_dir, "best", module=state.model, metadata={**metadata, "step": str(state.step)})
    record["time"] = round(time.perf_counter() - started, 3)
    state.window = {k: 0.0 for k in state.window}
    if log is not None:
        log.metrics(record)
        val_text = f" | val loss {record['val_loss']:.4f} acc {100 * record['val_acc']:.2f}%" if val is not None else ""
        line = (
            f"epoch {record['epoch']:.2f} step {state.step} | lr {record['lr']:.4g} | "
            f"train loss {record['train_loss']:.4f} acc {100 * record['train_acc']:.2f}%{val_text} | {record['time']:.1f} s"
        )
        if not quiet:
            bar.write(line) if not bar.disable else print(line, flush=True)
    state.set_train_mode()
    return record


def fit(
    state: TrainState,
    *,
    train: Loader,
    val: Loader | None,
    loop: LoopConfig,
    loss_fn: nn.Module,
    grad_clip: float | None,
    runtime: Runtime,
    log: RunLog | None,
    metadata: dict[str, str],
    quiet: bool = False,
    stop_after: int | None = None,
    step_fn: StepFn | None = None,
) -> FitOutput:
    """Train from ``state.step`` to the schedule's end (or ``stop_after``), evaluating and saving.

    ``step_fn(x, y) -> (loss, correct)`` replaces the eager :func:`train_step` (e.g. a step
    captured as a CUDA graph); it must read the learning rate that ``set_lr`` writes.
    """
    if step_fn is None:
        def step_fn(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return train_step(state, x, y, loss_fn=loss_fn, runtime=runtime, grad_clip=grad_clip)

    out = FitOutput(first_step=state.step)
    ckpt_dir = log.dir if log is not None else None  # only the main rank writes
    report_dir = ckpt_dir or runtime.run_dir  # every rank names the same checkpoint in its messages
    started = time.perf_counter()
    pending = _Pending()
    bar = tqdm(total=state.total_steps, initial=state.step, unit="step", dynamic_ncols=True, leave=False,
               bar_format=BAR_FORMAT, disable=quiet or not runtime.is_main or not sys.stderr.isatty())
    lines = not quiet and runtime.is_main and bar.disable  # no bar to watch (a file, a pipe): progress lines
    state.set_train_mode()
    done = state.step >= state.total_steps
    with stop_signals() as stop:
        while not done:
            epoch, start = divmod(state.step, state.steps_per_epoch)
            for x, y in train.epoch(epoch, start=start):
                set_lr(state.optimizer, lr_at(state.step, state.schedule))
                loss, correct = step_fn(x, y)
                pending.losses.append(loss)
                pending.correct.append(correct)
                pending.seen += int(y.shape[0])
                state.step += 1
                bar.update(1)
                do_eval, do_ckpt, done = _due(state, loop, stop_after=stop_after)
                # one process stops right after the step a signal interrupted; ranks agree at their next check
                stop_now = stop.signum is not None and runtime.world_size == 1
                if state.step % loop.log_every == 0 or do_eval or do_ckpt or stop_now:
                    rate = _flush(state, pending, out, ckpt_dir=report_dir, runtime=runtime, stop=stop)
                    _progress(state, out, rate, log_every=loop.log_every, bar=bar, log=log,
                              started=started if lines else None)
                interrupted = pending.stop_signum is not None and not done
                if do_eval:
                    out.evals.append(_eval_and_log(state, val, runtime=runtime, log=log, ckpt_dir=ckpt_dir,
                                                   metadata=metadata, started=started, bar=bar, quiet=quiet))
                if do_ckpt or interrupted:
                    _save_last(state, runtime=runtime, ckpt_dir=ckpt_dir, report_dir=report_dir, metadata=metadata)
                if do_eval or do_ckpt:
                    pending.since = time.perf_counter()  # the throughput counts training steps only
                if interrupted:
                    bar.close()
                    assert pending.stop_signum is not None
                    raise TrainingInterrupted(signum=pending.stop_signum, step=state.step,
                                              total_steps=state.total_steps, run_dir=report_dir)
                if done:
                    break
    bar.close()
    return out


def _progress(state: TrainState, out: FitOutput, rate: Rate, *, log_every: int, bar: tqdm, log: RunLog | None,
              started: float | None) -> None:
    """The bar's postfix; at every ``log_every``-th step the logged training loss (the mean over the
    last ``log_every`` steps) and, when ``started`` is given (no bar to watch), a progress line."""
    lr = lr_at(state.step - 1, state.schedule)
    recent = out.losses[-log_every:]
    loss = sum(recent) / len(recent)
    bar.set_postfix_str(f"loss {loss:.4f}, lr {lr:.3g}, {rate}", refresh=False)
    if state.step % log_every:
        return
    if started is not None:
        print(f"step {state.step:,}/{state.total_steps:,} | loss {loss:.4f} | lr {lr:.4g} | {rate} | "
              f"{time.perf_counter() - started:.1f} s", flush=True)
    if log is not None:
        log.train_loss(step=state.step, loss=loss, lr=lr)


def _save_last(state: TrainState, *, runtime: Runtime, ckpt_dir: Path | None, report_dir: Path | None,
               metadata: dict[str, str]) -> None:
    """The resumable ``last`` checkpoint (weights checked first), written by the main rank."""
    if report_dir is not None:
        _check_weights(state, ckpt_dir=report_dir)  # on every rank: DDP keeps the weights equal
        if ckpt_dir is not None:
            save_checkpoint(ckpt_dir, "last", module=state.model, metadata=metadata, state=state.state_dict())
        state.last_saved_step = state.step
    runtime.barrier()  # no rank goes on (or reads it) before the checkpoint is complete
