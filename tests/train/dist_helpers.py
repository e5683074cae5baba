"""Run ``resnets.train.run`` in several CPU processes (gloo), as torchrun would, and collect results.

Each worker sets torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), goes
through :func:`resnets.train.distributed.launch_env` and :func:`distributed_session` like
``resnets train`` does, and writes what its ``run`` returned to ``<results>/rank<r>.json``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp

SPAWN_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _nan_on_step(step: int | None) -> Iterator[None]:
    """Make this process's training loss NaN at ``step`` (its weights stay finite)."""
    import resnets.train.engine as engine

    real = engine.train_step

    def poisoned(state: Any, x: torch.Tensor, y: torch.Tensor, *, loss_fn: Any, runtime: Any,
                 grad_clip: float | None) -> tuple[torch.Tensor, torch.Tensor]:
        loss, correct = real(state, x, y, loss_fn=loss_fn, runtime=runtime, grad_clip=grad_clip)
        return (loss * math.nan if state.step == step else loss), correct

    engine.train_step = poisoned  # type: ignore[assignment]
    try:
        yield
    finally:
        engine.train_step = real  # type: ignore[assignment]


def _run_phase(rank: int, runtime: Any, job: dict[str, Any], phase: dict[str, Any]) -> dict[str, Any]:
    from resnets.train import NonFiniteLossError, config_from_mapping, run

    out_dir = Path(job["tmp"], phase["name"], "out", f"rank{rank}")
    cfg = config_from_mapping(job["recipe"], [*phase["overrides"], f"train.out_dir={out_dir}"])
    nan_step = phase.get("nan_step") if phase.get("nan_rank") == rank else None
    with _nan_on_step(nan_step):
        try:
            r = run(cfg, runtime=runtime, quiet=True, stop_after=phase.get("stop_after"))
        except NonFiniteLossError as exc:
            return {"error": str(exc), "error_step": exc.step}
    return {"losses": r.losses, "first_step": r.first_step, "step": r.step, "evals": r.evals, "test": r.test,
            "run_dir": str(r.run_dir) if r.run_dir else None}


def _worker(rank: int, world: int, port: int, job: dict[str, Any]) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    from resnets.train import LoopConfig
    from resnets.train.distributed import distributed_session, launch_env

    env = launch_env()
    assert env is not None and env.rank == rank and env.world_size == world
    with distributed_session(LoopConfig(threads=1), env=env, device="cpu", timeout_s=60) as runtime:
        for phase in job["phases"]:
            record = _run_phase(rank, runtime, job, phase)
            Path(job["tmp"], phase["name"], f"rank{rank}.json").write_text(json.dumps(record))


def run_processes(tmp: Path, *, recipe: dict[str, Any], phases: list[dict[str, Any]],
                  world: int = 2) -> dict[str, list[dict[str, Any]]]:
    """Train ``recipe`` in ``world`` gloo processes, once per phase (one process group for all).

    A phase is ``{"name", "overrides", "stop_after"?, "nan_rank"?, "nan_step"?}``; rank r of
    phase p writes its run under ``tmp/p/out/rank<r>``. Returns each phase's per-rank results.
    """
    for phase in phases:
        (tmp / phase["name"]).mkdir(parents=True, exist_ok=True)
    job = {"recipe": recipe, "phases": phases, "tmp": str(tmp)}
    ctx = mp.start_processes(_worker, args=(world, free_port(), job), nprocs=world, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + SPAWN_TIMEOUT_S
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.terminate()
            raise TimeoutError(f"the {world} training processes did not finish in {SPAWN_TIMEOUT_S} s")
    return {p["name"]: [json.loads((tmp / p["name"] / f"rank{r}.json").read_text()) for r in range(world)]
            for p in phases}
