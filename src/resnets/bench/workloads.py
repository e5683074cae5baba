"""The two sides of a comparison, as step functions: ours (our model on our fast paths) and
theirs (the twin in the plain loop everyone writes). Same batch, precision and memory format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from resnets.bench.config import BenchConfig
from resnets.bench.sources import BatchFn
from resnets.bench.twins import Twin
from resnets.deploy import inference_model
from resnets.models import create_model
from resnets.runtime import Runtime
from resnets.train.assemble import prepare_run
from resnets.train.config import LoopConfig, ModelConfig, OptimConfig, ScheduleConfig, TrainConfig, validate
from resnets.train.cuda_graphs import GraphedForward, GraphedTrainStep
from resnets.train.optim import set_lr
from resnets.train.schedule import lr_at

LR = 0.01  # small enough that random batches never overflow; speed does not depend on it


@dataclass
class Side:
    name: str  # "ours" or "theirs"
    description: str
    step: Callable[[], None]


@dataclass
class Setup:
    """What both sides share: device, precision, layout, batches, model sizes."""

    cfg: BenchConfig
    runtime: Runtime  # device, precision and layout, resolved once
    twin_runtime: Runtime  # the twin's: the same, or the same in fp32 (cfg.twin_precision)
    graphs: bool
    train_batches: BatchFn
    infer_batches: BatchFn
    num_classes: int
    in_chans: int

    def compile_ours(self) -> bool:
        return self.cfg.compile in ("both", "ours")

    def compile_theirs(self) -> bool:
        return self.cfg.compile == "both"

    @property
    def device(self) -> torch.device:
        return self.runtime.device


def _our_model(s: Setup) -> nn.Module:
    torch.manual_seed(s.cfg.seed)  # the same weights whenever a side is (re)built
    return create_model(s.cfg.model, num_classes=s.num_classes, in_chans=s.in_chans)


def build_model(s: Setup, twin: Twin, *, name: str) -> nn.Module:
    """Our model ("ours") or its twin ("theirs"), untrained, on the device; the twin gets our
    weights where the state-dict keys match."""
    if name == "ours":
        return s.runtime.place(_our_model(s))
    theirs = twin.build(s.num_classes, s.in_chans)
    if twin.same_keys:
        theirs.load_state_dict(_our_model(s).state_dict(), strict=True)
    return s.twin_runtime.place(theirs)


def build_pair(s: Setup, twin: Twin) -> tuple[nn.Module, nn.Module]:
    return build_model(s, twin, name="ours"), build_model(s, twin, name="theirs")


def _mode(s: Setup, *, ours: bool) -> str:
    runtime = s.runtime if ours else s.twin_runtime
    parts = [runtime.precision_name, "channels_last" if runtime.channels_last else "NCHW"]
    if (s.compile_ours() if ours else s.compile_theirs()):
        parts.append("torch.compile")
    return ", ".join(parts)


# -- training -----------------------------------------------------------------------------------
def our_train_side(s: Setup, model: nn.Module) -> Side:
    """Our model in the engine's step, assembled by ``prepare_run`` as a training run is:
    ``set_lr`` + the step it chose (the graphed step on CUDA, else the engine's ``train_step``)."""
    cfg = validate(TrainConfig(
        model=ModelConfig(name=s.cfg.model, num_classes=s.num_classes, in_chans=s.in_chans),
        optim=OptimConfig(lr=LR),  # fused SGD on CUDA
        schedule=ScheduleConfig(name="constant"),
        train=LoopConfig(iterations=10**9, compile=s.compile_ours(), cuda_graphs=s.graphs, tensorboard=False),
    ))
    run = prepare_run(cfg, s.runtime, bundle=None, model_fn=lambda _cfg, _bundle: model)
    state, optimizer = run.state, run.state.optimizer
    state.set_train_mode()
    train_step = run.step_fn(sample_batch=s.train_batches())

    def step() -> None:
        x, y = s.train_batches()
        set_lr(optimizer, lr_at(state.step, state.schedule))
        train_step(x, y)
        state.step += 1

    graphed = isinstance(train_step, GraphedTrainStep)
    how = "the engine's step captured as a CUDA graph" if graphed else "the engine's train_step"
    return Side("ours", f"resnets {s.cfg.model} in {how} (set_lr, {type(optimizer).__name__} "
                        f"{'fused' if optimizer.defaults.get('fused') else 'default impl'}; {_mode(s, ours=True)})", step)


def their_train_side(s: Setup, model: nn.Module, description: str) -> Side:
    """The twin in a plain loop: torch's default SGD, autocast, zero_grad / backward / step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, weight_decay=1e-4)
    step_model: nn.Module = torch.compile(model) if s.compile_theirs() else model  # type: ignore[assignment]
    step_model.train()
    runtime = s.twin_runtime

    def step() -> None:
        x, y = s.train_batches()
        x = runtime.prepare(x)
        optimizer.zero_grad(set_to_none=True)
        with runtime.autocast():
            loss = F.cross_entropy(step_model(x), y)
        loss.backward()
        optimizer.step()

    return Side("theirs", f"{description} in a plain training loop (SGD defaults; {_mode(s, ours=False)})", step)


# -- inference ------------------------------------------------------------------------------------
def our_infer_side(s: Setup, model: nn.Module) -> Side:
    """``resnets.deploy.inference_model``: BN folded, no grad, optionally compiled and graphed."""
    if s.runtime.autocast_dtype is not None and s.device.type != "cuda":
        raise ValueError("bf16 inference is benchmarked on CUDA only; use --precision fp32 (or auto) on the CPU")
    net = inference_model(model, device=s.device, fold=s.cfg.fold, compile=s.compile_ours(),
                          channels_last=s.runtime.channels_last, bf16=s.runtime.autocast_dtype is not None)
    run: Callable[[Tensor], Tensor] = net
    if s.graphs:
        run = GraphedForward(net, s.infer_batches()[0])

    def step() -> None:
        run(s.infer_batches()[0])

    extras = ("BN folded, " if s.cfg.fold else "") + ("CUDA graph, " if s.graphs else "")
    return Side("ours", f"resnets.deploy.inference_model({s.cfg.model}) ({extras}{_mode(s, ours=True)})", step)


def their_infer_side(s: Setup, model: nn.Module, description: str) -> Side:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    step_model: nn.Module = torch.compile(model) if s.compile_theirs() else model  # type: ignore[assignment]
    runtime = s.twin_runtime

    def step() -> None:
        x = runtime.prepare(s.infer_batches()[0])
        with torch.no_grad(), runtime.autocast():
            step_model(x).float()

    return Side("theirs", f"{description} in eval mode under no_grad ({_mode(s, ours=False)})", step)


WORKLOAD_SIDES: dict[str, tuple[Callable[[Setup, nn.Module], Side], Callable[[Setup, nn.Module, str], Side]]] = {
    "train": (our_train_side, their_train_side),
    "infer": (our_infer_side, their_infer_side),
}


def build_side(s: Setup, twin: Twin, workload: str, *, name: str) -> Side:
    """One side ("ours" or "theirs") of ``workload`` ("train" or "infer"), with a fresh model."""
    ours_fn, theirs_fn = WORKLOAD_SIDES[workload]
    model = build_model(s, twin, name=name)
    return ours_fn(s, model) if name == "ours" else theirs_fn(s, model, twin.label)


def build_sides(s: Setup, twin: Twin, workload: str) -> list[Side]:
    """[ours, theirs] for ``workload``, each with a fresh model."""
    return [build_side(s, twin, workload, name=name) for name in ("ours", "theirs")]


__all__ = ["Setup", "Side", "WORKLOAD_SIDES", "build_model", "build_pair", "build_side", "build_sides"]
