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

from dataclasses import dataclass, field

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
    family's default (option A for the CIFAR nets, B for the ImageNet nets)."""

    name: str = "resnet20"
    num_classes: int | None = None
    in_chans: int | None = None
    shortcut: str | None = None
    variant: str = "v1.5"
    zero_init_last: bool = False
    drop_path_rate: float = 0.0
    output_stride: int | None = None
    grad_checkpointing: bool = False


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


@dataclass
class FinetuneConfig:
    """Start from ``source`` (a run directory, a project checkpoint or a torchvision
    state-dict file); the head is re-initialised when the class count differs.
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


def validate(cfg: TrainConfig) -> TrainConfig:
    """Cross-field checks that types alone cannot express; returns ``cfg``."""
    loop, sched = cfg.train, cfg.schedule
    if (loop.epochs is None) == (loop.iterations is None):
        raise ValueError(
            "set exactly one of train.epochs and train.iterations "
            f"(got epochs={loop.epochs}, iterations={loop.iterations}); e.g. train.iterations=null"
        )
    if (loop.epochs or 1) < 1 or (loop.iterations or 1) < 1:
        raise ValueError("train.epochs / train.iterations must be >= 1")
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
    if cfg.optim.lr <= 0:
        raise ValueError(f"optim.lr={cfg.optim.lr} must be > 0")
    if loop.threads is not None and loop.threads < 1:
        raise ValueError("train.threads must be >= 1 (or null for torch's default)")
    if cfg.finetune.freeze_stages < -1:
        raise ValueError("finetune.freeze_stages must be -1 (nothing), 0 (stem) or k >= 1")
    return cfg
