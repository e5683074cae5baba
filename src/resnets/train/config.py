"""The training configuration: one typed dataclass per section of a YAML recipe.

A recipe has six sections, each a dataclass below (``data`` is
:class:`resnets.data.DataConfig`)::

    model:    {name: resnet20, shortcut: A}
    data:     {name: digits, batch_size: 64}
    optim:    {name: sgd, lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4}
    schedule: {name: multistep, unit: epoch, milestones: [20, 30]}
    train:    {epochs: 40, precision: auto}
    finetune: {source: null}

Loading, command-line overrides and type checking live in :mod:`resnets.train.configio`;
cross-field rules live in :func:`validate`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resnets.data.config import DataConfig

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
SCHEDULES: tuple[str, ...] = ("constant", "multistep", "step", "cosine")
SCHEDULE_UNITS: tuple[str, ...] = ("epoch", "iter")
WARMUP_MODES: tuple[str, ...] = ("linear", "constant")


@dataclass
class ModelConfig:
    """Which network: ``name`` from :func:`resnets.list_models`, with the options of
    :func:`resnets.create_model` (passed as keyword arguments by :func:`build_model`).
    ``num_classes``/``in_chans`` default (null) to the dataset's; ``shortcut`` null is the
    family's default (option A for the CIFAR nets, B for the ImageNet nets); ``pad_placement``
    says where option A puts its zero channels ("after" or "split", see ``ModelOptions``);
    ``norm`` "none" trains without normalisation, with ``fixup`` or ``branch_gate`` (SkipInit) to
    start each residual branch at zero."""

    name: str = "resnet20"
    num_classes: int | None = None
    in_chans: int | None = None
    shortcut: str | None = None
    pad_placement: str = "after"
    variant: str = "v1.5"
    zero_init_last: bool = False
    drop_path_rate: float = 0.0
    output_stride: int | None = None
    grad_checkpointing: bool = False
    norm: str = "batch"
    branch_gate: bool = False
    fixup: bool = False


@dataclass
class OptimConfig:
    """The optimizer (see :data:`resnets.train.optim.OPTIMIZERS`).

    ``lr_reference_batch``: when set, the learning rate is ``lr * global_batch / lr_reference_batch``
    (the linear scaling rule, e.g. 0.1 x batch/256 for ImageNet). ``no_decay_norm_bias`` puts
    BN parameters and biases (every parameter with fewer than two dimensions) in a group
    without weight decay.
    """

    name: str = "sgd"
    lr: float = 0.1
    lr_reference_batch: int | None = None
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    no_decay_norm_bias: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    alpha: float = 0.99
    grad_clip: float | None = None


@dataclass
class ScheduleConfig:
    """The learning-rate schedule, a pure function of the iteration (:func:`lr_at`).

    ``unit`` says whether ``milestones``, ``step_size`` and ``warmup`` count epochs or
    iterations. ``warmup_mode``: ``linear`` ramps from ``warmup_factor * lr`` to ``lr``;
    ``constant`` holds ``warmup_factor * lr`` (the paper's ResNet-110 warm-up: 0.1 x 0.1 = 0.01
    for 400 iterations), then the main schedule takes over.
    """

    name: str = "multistep"
    unit: str = "epoch"
    milestones: list[float] = field(default_factory=list)
    step_size: float | None = None
    gamma: float = 0.1
    warmup: float = 0.0
    warmup_mode: str = "linear"
    warmup_factor: float = 0.1
    min_lr: float = 0.0


@dataclass
class LoopConfig:
    """The ``train:`` section: how long, how precise, where to write.

    Exactly one of ``epochs``/``iterations`` is set. ``eval_every`` and ``checkpoint_every``
    count iterations; 0 means "at the end of every epoch" for evaluation and "at every
    evaluation" for checkpoints. ``resume``: false, true (the newest run of this name under
    ``out_dir``) or a run directory / checkpoint path. ``threads``: CPU threads for torch
    (null: torch's default; small nets on few shared cores often run fastest with 1).
    ``sync_bn``: under ``torchrun``, batch-norm statistics over the global batch rather than
    each process's (see docs/distributed.md); no effect in a single process.
    ``cuda_graphs``: capture the whole training step (forward, backward, optimizer) as one CUDA
    graph and replay it (single process, CUDA only; see resnets.train.cuda_graphs.GraphedTrainStep).
    """

    epochs: int | None = None
    iterations: int | None = None
    eval_every: int = 0
    checkpoint_every: int = 0
    log_every: int = 50
    label_smoothing: float = 0.0
    precision: str = "auto"
    channels_last: bool | str = "auto"
    compile: bool = False
    deterministic: bool = False
    seed: int = 0
    out_dir: str = "runs"
    name: str | None = None
    resume: bool | str = False
    tensorboard: bool = True
    threads: int | None = None
    sync_bn: bool = False
    cuda_graphs: bool = False


@dataclass
class FinetuneConfig:
    """Start from ``source`` (a run directory, a project checkpoint, a torchvision, akamaster or
    chenyaofo state-dict file, or published weights by name such as ``resnet50.IMAGENET1K_V2``);
    the head is re-initialised when the class count differs.
    ``freeze_stages``: -1 freezes nothing, 0 the stem, k the stem and the first k stages
    (their BN layers stay in eval mode)."""

    source: str | None = None
    freeze_stages: int = -1


@dataclass
class TrainConfig:
    """A whole training recipe."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    @property
    def run_name(self) -> str:
        return self.train.name or f"{self.model.name}-{self.data.name}"


def _one_of(value: object, choices: tuple[str, ...], key: str) -> None:
    if value not in choices:
        raise ValueError(f"{key}={value!r} is not one of {list(choices)}; set {key}=<one of those>")


def _non_negative(v: Any) -> bool:
    return v is None or v >= 0


def _positive(v: Any) -> bool:
    return v is None or v > 0


_SEED_LIMIT = 2**63
# Numeric ranges checked before anything is built (torch's own checks come too late, and
# some values, e.g. a negative gamma, would never be caught): key -> (check, the range).
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model.num_classes": (lambda v: v is None or 1 <= v <= 1_000_000, "in [1, 1e6] (or null for the dataset's)"),
    "model.in_chans": (lambda v: v is None or 1 <= v <= 1024, "in [1, 1024] (or null for the dataset's)"),
    "model.drop_path_rate": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "optim.lr": (lambda v: v > 0, "> 0"),
    "optim.lr_reference_batch": (_positive, ">= 1 (or null)"),
    "optim.momentum": (_non_negative, ">= 0"),
    "optim.weight_decay": (_non_negative, ">= 0"),
    "optim.betas": (lambda v: all(0.0 <= b < 1.0 for b in v), "two values in [0, 1), e.g. [0.9, 0.999]"),
    "optim.eps": (_non_negative, ">= 0"),
    "optim.alpha": (_non_negative, ">= 0"),
    "optim.grad_clip": (_positive, "> 0 (or null for no clipping)"),
    "schedule.milestones": (lambda v: all(m >= 0 for m in v), "values >= 0"),
    "schedule.step_size": (_positive, "> 0 (or null)"),
    "schedule.gamma": (lambda v: v > 0, "> 0"),
    "schedule.warmup": (_non_negative, ">= 0"),
    "schedule.warmup_factor": (_non_negative, ">= 0"),
    "schedule.min_lr": (_non_negative, ">= 0"),
    "train.seed": (lambda v: 0 <= v < _SEED_LIMIT, "in [0, 2**63)"),
    "data.seed": (lambda v: 0 <= v < _SEED_LIMIT, "in [0, 2**63)"),
}


def _floats(obj: Any, prefix: str) -> list[tuple[str, float]]:
    """Every float in a config (dataclasses, lists and tuples walked) with its dotted key."""
    if dataclasses.is_dataclass(obj):
        return [x for f in dataclasses.fields(obj) for x in _floats(getattr(obj, f.name), f"{prefix}{f.name}.")]
    if isinstance(obj, (list, tuple)):
        return [x for v in obj for x in _floats(v, prefix)]
    return [(prefix.rstrip("."), obj)] if isinstance(obj, float) else []


def _check_values(cfg: TrainConfig) -> None:
    """Finite numbers within range, a known model, options that the optimizer accepts."""
    for key, value in _floats(cfg, ""):
        if not math.isfinite(value):
            raise ValueError(f"{key}={value} must be a finite number")
    for key, (ok, what) in RANGES.items():
        section, leaf = key.split(".")
        value = getattr(getattr(cfg, section), leaf)
        if not ok(value):
            raise ValueError(f"{key}={value!r} must be {what}")
    from resnets.models.blocks import PAD_PLACEMENTS, SHORTCUTS
    from resnets.models.registry import VARIANTS, get_entry

    try:
        get_entry(cfg.model.name)
    except ValueError as exc:
        raise ValueError(f"model.name: {exc}") from None
    if cfg.model.shortcut is not None:
        _one_of(cfg.model.shortcut, SHORTCUTS, "model.shortcut")
    _one_of(cfg.model.variant, VARIANTS, "model.variant")
    _one_of(cfg.model.pad_placement, PAD_PLACEMENTS, "model.pad_placement")
    if cfg.optim.name == "sgd" and cfg.optim.nesterov and cfg.optim.momentum <= 0:
        raise ValueError("optim.nesterov=true needs optim.momentum > 0 (e.g. optim.momentum=0.9)")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Cross-field checks that types alone cannot express; returns ``cfg``."""
    _check_values(cfg)
    loop, sched = cfg.train, cfg.schedule
    if (loop.epochs is None) == (loop.iterations is None):
        raise ValueError(
            "set exactly one of train.epochs and train.iterations "
            f"(got epochs={loop.epochs}, iterations={loop.iterations}); e.g. train.iterations=null"
        )
    for key in ("epochs", "iterations"):
        if getattr(loop, key) is not None and getattr(loop, key) < 1:
            raise ValueError(f"train.{key}={getattr(loop, key)} must be >= 1")
    _one_of(loop.precision, PRECISIONS, "train.precision")
    if isinstance(loop.channels_last, str):
        _one_of(loop.channels_last, ("auto",), "train.channels_last")
    _one_of(sched.name, SCHEDULES, "schedule.name")
    _one_of(sched.unit, SCHEDULE_UNITS, "schedule.unit")
    _one_of(sched.warmup_mode, WARMUP_MODES, "schedule.warmup_mode")
    if sched.name == "step" and not sched.step_size:
        raise ValueError("schedule.name=step needs schedule.step_size (e.g. schedule.step_size=30)")
    if sorted(sched.milestones) != list(sched.milestones):
        raise ValueError(f"schedule.milestones={sched.milestones} must be increasing")
    for key in ("eval_every", "checkpoint_every", "log_every"):
        if getattr(loop, key) < 0:
            raise ValueError(f"train.{key} must be >= 0")
    if loop.log_every == 0:
        raise ValueError("train.log_every must be >= 1")
    if not 0.0 <= loop.label_smoothing < 1.0:
        raise ValueError(f"train.label_smoothing={loop.label_smoothing} must be in [0, 1)")
    if loop.threads is not None and loop.threads < 1:
        raise ValueError("train.threads must be >= 1 (or null for torch's default)")
    if cfg.finetune.freeze_stages < -1:
        raise ValueError("finetune.freeze_stages must be -1 (nothing), 0 (stem) or k >= 1")
    return cfg
