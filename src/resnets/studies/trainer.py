"""Train one network of a study under a :class:`Recipe`, measuring error curves as it goes.

The training engine's :func:`resnets.train.fit` runs the steps, in chunks that end at each
measuring point; between chunks the network is evaluated on a fixed subset of the training
split (evaluation mode, no augmentation) and on the test split. The test split only draws the
curves: nothing is chosen on it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from resnets.data import DataBundle, Loader
from resnets.data.loader import TensorLoader
from resnets.runtime import Runtime
from resnets.studies.nets import NetSpec
from resnets.studies.pool import report_progress
from resnets.studies.recipe import Recipe
from resnets.train import NonFiniteLossError, PreparedRun, evaluate, fit, make_runtime, prepare_run, validate
from resnets.train.runtime import seed_everything
from resnets.train.state import TrainState


@dataclass
class Prepared:
    """A network ready to train: its data, runtime and training state."""

    bundle: DataBundle
    runtime: Runtime
    state: TrainState
    train_eval: Loader  # the curves' (subset of the) training split
    train_final: Loader  # the whole training split, for the final figure
    run: PreparedRun


def train_eval_loader(bundle: DataBundle, *, max_samples: int, batch_size: int) -> Loader:
    """The training split in evaluation mode (fixed subset, no augmentation); when the
    training loader streams files, the training loader itself (augmented) is used."""
    train = bundle.train
    if not isinstance(train, TensorLoader):
        return train
    n = int(train.images.shape[0])
    idx = np.linspace(0, n - 1, num=min(n, max_samples)).round().astype(np.int64)
    pick = torch.from_numpy(idx).to(train.images.device)
    return TensorLoader(
        train.images.index_select(0, pick), train.labels.index_select(0, pick), batch_size=batch_size,
        train=False, pipeline=train.pipeline, device=train.device, seed=train.seed,
    )


def prepare(spec: NetSpec, recipe: Recipe, *, device: torch.device | str,
            model_options: Mapping[str, Any] | None = None) -> Prepared:
    """Data, network, optimizer and schedule of ``spec`` (the recipe as a training configuration),
    seeded by ``spec.seed``; ``model_options``: fields of the model's configuration to change
    (e.g. ``{"norm": "none", "fixup": True}``)."""
    cfg = recipe.train_config(kind=spec.kind, depth=spec.depth, seed=spec.seed)
    if model_options:
        cfg = validate(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model_options)))
    runtime = make_runtime(cfg.train, device=device)
    seed_everything(spec.seed)
    run = prepare_run(cfg, runtime)
    assert run.bundle is not None
    eval_batch = max(256, recipe.batch_size)
    train_eval = train_eval_loader(run.bundle, max_samples=recipe.train_eval_samples, batch_size=eval_batch)
    train_final = train_eval_loader(run.bundle, max_samples=recipe.final_train_eval_samples, batch_size=eval_batch)
    return Prepared(bundle=run.bundle, runtime=runtime, state=run.state, train_eval=train_eval,
                    train_final=train_final, run=run)


def _errors(p: Prepared, *, final: bool = False) -> tuple[float, float]:
    """(training error, test error) of the network as it is now; ``final``: on the whole training split."""
    model = p.state.model
    train = 1.0 - evaluate(model, p.train_final if final else p.train_eval, runtime=p.runtime)["acc"]
    test = 1.0 - evaluate(model, p.bundle.test, runtime=p.runtime)["acc"] if p.bundle.test is not None else math.nan
    return train, test


# Before the first measuring point, training also pauses after these steps: the time between the
# two is the network's step time, reported early (the estimate of the time left is made from it).
PROBE_STEPS = (5, 15)


def chunk_ends(recipe: Recipe) -> list[int]:
    """Where training pauses: the probe steps below the first measuring point, then every measuring point."""
    steps = recipe.eval_steps()
    return [s for s in PROBE_STEPS if s < steps[0]] + steps


def train_chunks(p: Prepared, recipe: Recipe, *, curve: dict[str, list[float]]) -> int | None:
    """Train to the end, appending one point per measuring step to ``curve`` and reporting the
    progress (:func:`report_progress`) at every pause; returns the step at which the loss stopped
    being finite (None when it never did)."""
    cfg = p.run.cfg
    measuring = set(recipe.eval_steps())
    for stop in chunk_ends(recipe):
        try:
            out = fit(p.state, train=p.bundle.train, val=None, loop=cfg.train, loss_fn=p.run.loss_fn,
                      grad_clip=cfg.optim.grad_clip, runtime=p.runtime, log=None, metadata={}, quiet=True,
                      stop_after=stop)
        except NonFiniteLossError as exc:
            return exc.step
        report_progress(step=p.state.step, total=recipe.iterations)
        if stop not in measuring:
            continue
        train_err, test_err = _errors(p)
        window = out.evals[-1] if out.evals else {"train_acc": math.nan, "train_loss": math.nan, "lr": math.nan}
        curve["step"].append(p.state.step)
        curve["train_error"].append(train_err)
        curve["test_error"].append(test_err)
        curve["running_train_error"].append(1.0 - window["train_acc"])
        curve["train_loss"].append(window["train_loss"])
        curve["lr"].append(window["lr"])
    return None


def train_model(spec: NetSpec, recipe: Recipe, *, device: torch.device | str,
                model_options: Mapping[str, Any] | None = None) -> tuple[Prepared, dict[str, Any]]:
    """Train ``spec`` under ``recipe`` (with ``model_options``, see :func:`prepare`); the trained
    network (in ``Prepared.state.model``) and a JSON-ready result with its curves and final errors."""
    started = time.perf_counter()
    p = prepare(spec, recipe, device=device, model_options=model_options)
    curve: dict[str, list[float]] = {k: [] for k in
                                     ("step", "train_error", "test_error", "running_train_error", "train_loss", "lr")}
    diverged = train_chunks(p, recipe, curve=curve)
    train_err, test_err = _errors(p, final=True)
    return p, {
        "key": spec.key, "kind": spec.kind, "depth": spec.depth, "seed": spec.seed,
        "params": sum(q.numel() for q in p.state.model.parameters()),
        "steps": p.state.step, "diverged_at": diverged,
        "train_error": train_err, "test_error": test_err,
        "curve": curve, "elapsed_s": round(time.perf_counter() - started, 2), "device": str(p.runtime.device),
    }


def train_network(spec: NetSpec, recipe: Recipe, *, device: torch.device | str) -> dict[str, Any]:
    """Train ``spec`` under ``recipe``; a JSON-ready result with its curves and final errors."""
    return train_model(spec, recipe, device=device)[1]
