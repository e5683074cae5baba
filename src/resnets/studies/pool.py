"""Run a study's networks: resumable (one JSON per finished network) and several at once.

Each task's result is written to ``<out>/nets/<key>.json`` the moment it finishes; a rerun
with the same directory skips every task whose JSON is there. On a CPU the tasks run in a
process pool, one torch thread per worker; on a GPU, in several processes sharing it.
Progress (:mod:`resnets.studies.progress`): one line per finished network, and an estimate of the
time left computed from the networks' measured step times (a task reports them with
:func:`report_progress`); a bar only on a terminal.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import pickle
import queue
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from resnets.studies.nets import NetSpec
from resnets.studies.progress import Progress, ProgressEvent
from resnets.studies.recipe import Recipe
from resnets.train.rundir.atomic import write_atomically

Result = dict[str, Any]
TaskFn = Callable[[Any, str], Result]  # (task, device) -> JSON-ready result; a module-level function
GPU_WORKERS = 4  # processes sharing one GPU: small CIFAR nets are bound by kernel launches


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def default_workers(device: str, num_tasks: int) -> int:
    """min(cores, tasks) on a CPU; a few processes per GPU."""
    limit = GPU_WORKERS if torch.device(device).type == "cuda" else usable_cores()
    return max(1, min(limit, num_tasks))


def write_json(path: Path, data: Any) -> None:
    """Atomic: a crash leaves the old file or the new one, never half of one."""
    write_atomically(path, json.dumps(data, indent=1, allow_nan=True))


def result_path(out_dir: Path, key: str) -> Path:
    return out_dir / "nets" / f"{key}.json"


def load_result(out_dir: Path, key: str) -> Result | None:
    path = result_path(out_dir, key)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # unreadable: train it again


# builtin types an error keeps when it cannot travel back from a worker as itself (most specific first)
_PORTABLE: tuple[type[Exception], ...] = (FileNotFoundError, PermissionError, OSError, ValueError, TypeError)


def portable_error(exc: Exception) -> Exception:
    """``exc`` when it survives pickling (the way back from a worker), else its message in the
    nearest builtin type: an error that cannot be unpickled would break the whole pool."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        kind = next((t for t in _PORTABLE if isinstance(exc, t)), RuntimeError)
        return kind(str(exc)) if kind is not RuntimeError else RuntimeError(f"{type(exc).__name__}: {exc}")


# -- progress reports from inside a task ---------------------------------------------------

_sink: Callable[[ProgressEvent], None] | None = None  # where report_progress sends (set while a task runs)
_task: tuple[str, float] | None = None  # the running task's key and start time
_queue: Any = None  # a worker process's queue to the main process


def report_progress(*, step: int, total: int) -> None:
    """Called by a task as it trains: ``step`` of ``total`` iterations done. The pool turns these
    into the estimate of the time left; outside a pool it does nothing."""
    if _sink is not None and _task is not None:
        key, started = _task
        _sink(ProgressEvent(key=key, step=step, total=total, elapsed=time.perf_counter() - started))


@contextlib.contextmanager
def _reporting(key: str, sink: Callable[[ProgressEvent], None] | None) -> Iterator[None]:
    global _sink, _task
    _sink, _task = sink, (key, time.perf_counter())
    try:
        yield
    finally:
        _sink, _task = None, None


def _init_worker(events: Any) -> None:
    global _queue
    _queue = events


def _run_one(fn: TaskFn, task: Any, key: str, device: str, threads: int | None) -> Result:
    """A worker's job (module level, so that it pickles)."""
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with _reporting(key, _queue.put if _queue is not None else None):
            return fn(task, device)
    except Exception as exc:
        raise portable_error(exc) from None


def task_weight(task: Any) -> float:
    """The relative cost of a study's task, for the estimate of the time left: depth x iterations
    when the task holds a :class:`NetSpec` and a :class:`Recipe` (the networks of a study share their
    widths, so a step's time grows with the depth), else 1."""
    parts = task if isinstance(task, tuple) else (task,)
    spec = next((t for t in parts if isinstance(t, NetSpec)), None)
    recipe = next((t for t in parts if isinstance(t, Recipe)), None)
    return float(spec.depth * recipe.iterations) if spec is not None and recipe is not None else 1.0


@contextlib.contextmanager
def removed_if_failed_empty(out_dir: Path) -> Iterator[None]:
    """A study directory this call creates is removed again when the study fails before any
    network finished (a missing dataset, a bad option): no empty run directory stays behind."""
    existed = out_dir.exists()
    try:
        yield
    except BaseException:
        if not existed and out_dir.is_dir() and not any((out_dir / "nets").glob("*.json")):
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


@dataclass
class PoolOptions:
    out_dir: Path
    device: str = "cpu"
    workers: int | None = None  # None: default_workers
    quiet: bool = False
    describe: Callable[[Result], str] = str


def run_tasks(tasks: Sequence[Any], *, fn: TaskFn, keys: Sequence[str], options: PoolOptions) -> dict[str, Result]:
    """Run every task without a saved result; returns all results by key (saved ones included)."""
    if len(set(keys)) != len(keys):
        raise ValueError(f"task keys must be unique, got {list(keys)}")
    results: dict[str, Result] = {}
    todo: list[tuple[str, Any]] = []
    for key, task in zip(keys, tasks):
        saved = load_result(options.out_dir, key)
        if saved is not None:
            results[key] = saved
        else:
            todo.append((key, task))
    workers = options.workers or default_workers(options.device, len(todo))
    progress = Progress(weights={key: task_weight(task) for key, task in todo}, finished=len(results),
                        workers=1 if len(todo) <= 1 else workers, device=options.device, quiet=options.quiet,
                        describe=options.describe)
    if results:
        progress.note(f"resuming: {len(results)} of {len(tasks)} networks already finished in {options.out_dir}")

    def finish(key: str, result: Result) -> None:
        write_json(result_path(options.out_dir, key), result)
        results[key] = result
        progress.finish(key, result)

    try:
        if workers <= 1 or len(todo) <= 1:
            for key, task in todo:
                with _reporting(key, progress.update):
                    result = fn(task, options.device)
                finish(key, result)
        else:
            _run_pool(todo, fn=fn, workers=workers, device=options.device, finish=finish, progress=progress)
    finally:
        progress.close()
    return results


def _run_pool(todo: list[tuple[str, Any]], *, fn: TaskFn, workers: int, device: str,
              finish: Callable[[str, Result], None], progress: Progress) -> None:
    threads = 1 if torch.device(device).type == "cpu" else None
    ctx = multiprocessing.get_context("spawn")  # safe with CUDA and with torch's thread pools
    events = ctx.Queue()
    pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx, initializer=_init_worker,
                               initargs=(events,))
    futures: dict[Future[Result], str] = {pool.submit(_run_one, fn, task, key, device, threads): key
                                          for key, task in todo}
    pending = set(futures)

    def drain() -> None:
        while True:
            try:
                progress.update(events.get_nowait())
            except queue.Empty:
                return

    try:
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            drain()
            for future in done:
                finish(futures[future], future.result())
    except BaseException:
        # interrupted or a network failed: stop the others now (finished results are saved)
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise
    finally:
        events.close()
        events.cancel_join_thread()
    pool.shutdown(wait=True)
