"""``run_bench``: one configuration, both workloads, ours against the twin -> a result dict.

The dict is plain JSON (see :mod:`resnets.bench.results`)::

    {"schema": 1, "config": {...}, "resolved": {...}, "env": {...}, "reference": "...",
     "batches": "...", "results": {"train": {"ours": {...}, "theirs": {...}, "ratio": 1.02}, ...},
     "notes": [...]}

Each side holds ``img_per_s`` (the median over repetitions), ``samples`` (every
repetition), ``min``/``max``/``spread``, ``peak_memory_bytes`` (None where not measured) and
``description`` (exactly what ran). ``ratio`` is ours / theirs of the medians;
``paired_ratio`` the median of the per-repetition ratios (robust to a drifting machine load).
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from resnets.bench.config import BenchConfig
from resnets.bench.memory import NOT_MEASURED_CPU, peak_bytes
from resnets.bench.results import WORKLOAD_TITLES, header_lines, load_line, workload_lines
from resnets.bench.sources import Batches, loader_batches, synthetic_batches
from resnets.bench.timing import alternate, summarize
from resnets.bench.twins import Twin, get_twin
from resnets.bench.workloads import Setup, build_side, build_sides
from resnets.io.environment import environment, load_average
from resnets.models import create_model
from resnets.runtime import Runtime

SCHEMA = 1
Report = Callable[[str], None]  # receives text as the benchmark goes


def _native_size(name: str) -> int:
    with torch.device("meta"):
        return int(create_model(name).default_input_size[1])


def _batches(cfg: BenchConfig, device: torch.device) -> Batches:
    native = _native_size(cfg.model)
    if cfg.data is not None:
        return loader_batches(cfg, device=device, native_size=native)
    with torch.device("meta"):
        classes = int(create_model(cfg.model).num_classes)
    return synthetic_batches(cfg, device=device, num_classes=classes, in_chans=3, image_size=cfg.image_size or native)


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _memory(setup: Setup, twin: Twin, workload: str, *, name: str, notes: list[str]) -> int | None:
    """Peak memory of one side measured alone: its model built fresh, its optimizer state,
    graphs and compiled code, and two steps (the first allocates lazily created state)."""
    device = setup.runtime.device
    _release(device)

    def build_and_step() -> None:
        side = build_side(setup, twin, workload, name=name)
        side.step()
        side.step()

    value = peak_bytes(build_and_step, device)
    _release(device)
    if value is None and NOT_MEASURED_CPU not in notes:
        notes.append(NOT_MEASURED_CPU)
    return value


def _measure(cfg: BenchConfig, setup: Setup, twin: Twin, workload: str, notes: list[str], report: Report) -> dict[str, Any]:
    sides = build_sides(setup, twin, workload)

    def warm(seconds: float) -> None:
        report(f"{WORKLOAD_TITLES.get(workload, workload)}: warmed up; the timed steps take about {seconds:.2g} s")

    rates = alternate(sides, warmup=cfg.warmup, reps=cfg.reps, steps=cfg.steps, batch=cfg.batch,
                      device=setup.runtime.device, on_warm=warm)
    descriptions = {side.name: side.description for side in sides}
    del sides
    out: dict[str, Any] = {}
    for name in ("ours", "theirs"):
        summary = summarize(rates[name])
        out[name] = {
            "img_per_s": summary["median"],
            "samples": rates[name],
            "min": summary["min"],
            "max": summary["max"],
            "spread": summary["spread"],
            "peak_memory_bytes": _memory(setup, twin, workload, name=name, notes=notes) if cfg.memory else None,
            "description": descriptions[name],
        }
    out.update(ratios(rates["ours"], rates["theirs"]))
    return out


def ratios(ours: list[float], theirs: list[float]) -> dict[str, float]:
    """``ratio``: ours / theirs of the median throughputs; ``paired_ratio``: the median of the
    per-repetition ratios (each repetition's two timings are adjacent in time: their ratio
    cancels slow drifts of a shared machine)."""
    return {
        "ratio": statistics.median(ours) / statistics.median(theirs),
        "paired_ratio": statistics.median(o / t for o, t in zip(ours, theirs)),
    }


def _busy_note(env: dict[str, Any], device: torch.device) -> str | None:
    """A warning when other processes competed for the CPU (load above the core count)."""
    loads = [v for v in (env.get("load_average"), env.get("load_average_end")) if v]
    cores = env.get("cpu_count") or 1
    worst = max((v[0] for v in loads), default=0.0)
    if worst <= cores:
        return None
    where = "host-side work (launches, loaders)" if device.type == "cuda" else "every figure"
    return (f"the machine was busy (1-minute load average up to {worst} on {cores} cores): {where} may be slowed "
            "and noisy; rerun when `uptime` shows a load below the core count")


def _precision(runtime: Runtime) -> str:
    return "bf16 autocast" if runtime.autocast_dtype is torch.bfloat16 else "fp32"


def resolve(cfg: BenchConfig, runtime: Runtime) -> dict[str, Any]:
    """The choices ``auto`` left open, as they were made on this device."""
    return {
        "device": str(runtime.device),
        "precision": _precision(runtime),
        "twin_precision": _precision(cfg.twin_runtime(runtime)),
        "channels_last": runtime.channels_last,
        "cuda_graphs": cfg.use_graphs(runtime.device),
        "compile": cfg.compile,
        "fold_bn": cfg.fold,
    }


def run_bench(cfg: BenchConfig, *, report: Report | None = None) -> dict[str, Any]:
    """Measure ``cfg`` and return the result dict (nothing written). ``report`` receives text as
    the run goes: the header before the first step, then each workload's figures once measured."""
    runtime = cfg.runtime()
    threads_before = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, runtime, report or (lambda text: None))
    finally:
        torch.set_num_threads(threads_before)


def _plan(cfg: BenchConfig) -> str:
    per_side = cfg.warmup + cfg.reps * cfg.steps + (2 if cfg.memory else 0)
    return (f"measuring {len(cfg.workloads)} workload(s) x 2 sides x {per_side} steps of batch {cfg.batch}; "
            "each workload's figures follow when it is done")


def _run(cfg: BenchConfig, runtime: Runtime, report: Report) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    device = runtime.device
    twin = get_twin(cfg.model)
    resolved = resolve(cfg, runtime)
    env = environment(device)
    notes = list(cfg.notes)
    batches = _batches(cfg, device)
    setup = Setup(
        cfg=cfg, runtime=runtime, twin_runtime=cfg.twin_runtime(runtime), graphs=resolved["cuda_graphs"],
        train_batches=batches.train, infer_batches=batches.infer,
        num_classes=batches.num_classes, in_chans=batches.in_chans,
    )
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    results: dict[str, Any] = {}
    result = {
        "schema": SCHEMA,
        "config": {**dataclasses.asdict(cfg), "workloads": list(cfg.workloads)},  # JSON-native
        "resolved": resolved,
        "env": env,
        "reference": twin.description,
        "batches": batches.description,
        "image_size": batches.image_size,
        "results": results,
        "notes": notes,
    }
    report("\n".join([*header_lines(result), load_line(result), _plan(cfg)]))
    started = time.perf_counter()
    for i, workload in enumerate(cfg.workloads):
        results[workload] = _measure(cfg, setup, twin, workload, notes, report)
        _release(device)
        left = len(cfg.workloads) - i - 1
        eta = f"\n({left} more workload(s), about {(time.perf_counter() - started) / (i + 1) * left:.0f} s to go)" if left else ""
        report("\n".join(workload_lines(workload, results[workload])) + eta)
    env["load_average_end"] = load_average()
    busy = _busy_note(env, device)
    if busy:
        notes.append(busy)
    return result


__all__ = ["SCHEMA", "ratios", "resolve", "run_bench"]
