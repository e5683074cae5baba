"""The training recipe shared by every network of a study, and its per-device defaults.

On a CPU the default is a ladder of 8, 20 and 56 layers on the embedded digits (8x8, one
channel), three seeds, that finishes in minutes (chosen by measurement: see ``CPU_DIGITS``);
on a GPU it is the paper's experiment (He et al. 2015, section 4.2): CIFAR-10, depths
20/32/44/56/110, SGD momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at
32k and 48k iterations, 64k iterations, ResNet-110 warmed up at 0.01.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from resnets.data import DataConfig
from resnets.studies.nets import check_depth, model_name
from resnets.train import LoopConfig, ModelConfig, OptimConfig, ScheduleConfig, TrainConfig, validate


@dataclass(frozen=True)
class Recipe:
    """How every network of a study is trained and measured.

    ``warmup_iterations`` at ``lr * 0.1`` apply to networks of at least ``warmup_min_depth``
    layers (the paper's ResNet-110 rule). ``eval_every``: iterations between the points of the
    error curves. ``plain_max_depth``: no plain twin deeper than this (None: every depth).
    ``image_size``: the images resized to this side (None: the dataset's own).
    ``train_eval_samples``: the curves' training error is measured in evaluation mode, without
    augmentation, on a fixed subset of at most this many training images; the final training
    error (the table) on at most ``final_train_eval_samples`` of them (the default: all of CIFAR-10's).
    """

    data: str = "digits"
    root: str | None = None
    download: bool = False
    augment: str = "auto"
    val_fraction: float = 0.0
    image_size: int | None = None
    batch_size: int = 128
    iterations: int = 1000
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = ()
    warmup_iterations: int = 0
    warmup_min_depth: int = 110
    eval_every: int = 100
    train_eval_samples: int = 10000
    final_train_eval_samples: int = 50000
    precision: str = "auto"
    depths: tuple[int, ...] = (8, 20)
    plain_max_depth: int | None = None
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.eval_every < 1 or self.batch_size < 1:
            raise ValueError("iterations, eval_every and batch_size must be >= 1")
        if not self.depths or not self.seeds:
            raise ValueError("give at least one depth and one seed")
        for depth in self.depths:
            check_depth(depth)
        self.train_config(kind="residual", depth=self.depths[0], seed=self.seeds[0])  # lr, schedule: checked once, there

    def warmup_for(self, depth: int) -> int:
        return self.warmup_iterations if depth >= self.warmup_min_depth else 0

    def eval_steps(self) -> list[int]:
        """The iterations after which the curves are measured (the last one always included)."""
        steps = list(range(self.eval_every, self.iterations, self.eval_every))
        return steps + [self.iterations]

    def train_config(self, *, kind: str, depth: int, seed: int) -> TrainConfig:
        """The training configuration of one network of the study (checked by the training
        package's one validation: the learning rate, the schedule, the model)."""
        return validate(TrainConfig(
            model=ModelConfig(name=model_name(depth=depth, kind=kind)),
            data=DataConfig(name=self.data, root=self.root, download=self.download, augment=self.augment,
                            batch_size=self.batch_size, val_fraction=self.val_fraction, image_size=self.image_size,
                            seed=seed, decode_cache=True),
            optim=OptimConfig(name="sgd", lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay),
            schedule=ScheduleConfig(name="multistep", unit="iter", milestones=[float(m) for m in self.milestones],
                                    warmup=float(self.warmup_for(depth)), warmup_mode="constant", warmup_factor=0.1),
            train=LoopConfig(iterations=self.iterations, eval_every=self.eval_every, log_every=self.eval_every,
                             precision=self.precision, tensorboard=False, seed=seed),
        ))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_iterations(self, iterations: int, *, points: int = 10) -> Recipe:
        """The same recipe run for ``iterations``: the lr drops at the same fractions of the run, and
        at least ``points`` points on the curves (never sparser than the recipe's own)."""
        return self.replace({"iterations": iterations,
                             "milestones": tuple(max(1, round(m * iterations / self.iterations))
                                                 for m in self.milestones),
                             "eval_every": max(1, min(self.eval_every, iterations // points or 1))})

    def replace(self, changes: Mapping[str, Any]) -> Recipe:
        """A copy with ``changes`` (None values ignored); an unknown name is an error."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown recipe field(s) {unknown}; known: {sorted(known)}")
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **values)


PAPER_CIFAR10 = Recipe(
    data="cifar10", augment="cifar", batch_size=128, iterations=64000, lr=0.1, momentum=0.9,
    weight_decay=1e-4, milestones=(32000, 48000), warmup_iterations=400, warmup_min_depth=110,
    eval_every=1000, depths=(20, 32, 44, 56, 110), plain_max_depth=56, seeds=(0,),
)

# Chosen by measurement: digits (1,438 training / 359 test images), batch 64, 3 seeds; final training
# error % (mean, min-max over seeds); "CPU s": the networks' summed CPU time, one torch thread each,
# measured on a shared 2-core Intel Xeon (load 4-14), so "wall" = CPU s / 2 is an estimate for 2 cores.
#   depths   lr     iters (lr/10 at)   warm-up         plain 8 / 20 / 56         residual 8 / 20 / 56     CPU s  wall
#   8/20/26  0.1    800 (400, 600)    -               0.07/0.35/0.76 (1 seed)   0.21/0.00/0.00           -     81 s (old)
#   8/20/56  0.1    600 (300, 450)    -               0.07/0.42/71.0 (68-74)    0.12/0.07/15.7 (2.9-39)   298   149 s
#   8/56     0.1   1000 (500, 750)    100 at 0.01     0.00/-/- (plain-8 only)   0.00/-/1.53 (0.49-3.27)   212   106 s
#   8/20/56  0.05   800 (600)         100 at 0.005    0.00/0.05/44.3 (27-66)    0.00/0.00/0.14 (0.07-0.28) 388  194 s
#   8/20/56  0.02   800 (600)         -               0.02/0.02/53.7 (48-61)    0.00/0.00/0.05 (0-0.07)   386   193 s  <- chosen
#   8/56     0.02   800 (600), seeds 3/4/5            0.02/-/59.0 (48-66)       0.00/-/0.00 (0-0)         -      -
#   8/56     0.02  1000 (750), 2 seeds                -                         residual-56 0.00, 0.07    -      -
# At lr 0.1 residual-56 blows up in its first few hundred iterations (39 % for one seed; with a warm-up,
# when the lr rises to 0.1); at 0.05 it ends one to four images short of residual-8, at 0.02 at most one,
# while plain-56 stays near 50 % whatever the lr: plain-56 over 100x plain-8 with the bands far apart,
# residual-56 within residual-8's band. 1000 iterations do not close the last image (CPU s +25 %).
CPU_DIGITS = Recipe(
    data="digits", augment="auto", batch_size=64, iterations=800, lr=0.02, momentum=0.9,
    weight_decay=1e-4, milestones=(600,), eval_every=100, train_eval_samples=500, depths=(8, 20, 56),
    seeds=(0, 1, 2),
)

# Gradients: three depths, three seeds (the verdicts need bands), trained at the degradation default's lr
# until every residual net is at <= 0.2 % training error on digits (lr 0.1 left one residual-56 seed at 45 %);
# plain-56 stays far above (52-71 %): the degradation the paper explains.
GRADIENTS_CPU = Recipe(data="digits", batch_size=64, iterations=500, lr=0.02, milestones=(375,), eval_every=100,
                       depths=(8, 20, 56), seeds=(0, 1, 2))
GRADIENTS_GPU = Recipe(data="cifar10", augment="cifar", batch_size=128, iterations=2000, lr=0.1, eval_every=500,
                       warmup_iterations=400, depths=(20, 32, 44, 56, 110), seeds=(0, 1, 2))

# Identity: trained networks to insert units into and to measure (Figure 7: 20 and 56 layers).
IDENTITY_CPU = Recipe(data="digits", batch_size=64, iterations=300, lr=0.1, milestones=(225,), eval_every=100,
                      depths=(8, 20, 32), seeds=(0, 1, 2))
IDENTITY_GPU = Recipe(data="cifar10", augment="cifar", batch_size=128, iterations=16000, lr=0.1,
                      milestones=(8000, 12000), eval_every=1000, warmup_iterations=400,
                      depths=(20, 56, 110), plain_max_depth=56, seeds=(0,))

# study -> device type -> default recipe (cuda: the paper's data and depths)
STUDY_DEFAULTS: dict[str, dict[str, Recipe]] = {
    "degradation": {"cpu": CPU_DIGITS, "cuda": PAPER_CIFAR10, "mps": CPU_DIGITS},
    "gradients": {"cpu": GRADIENTS_CPU, "cuda": GRADIENTS_GPU, "mps": GRADIENTS_CPU},
    "identity": {"cpu": IDENTITY_CPU, "cuda": IDENTITY_GPU, "mps": IDENTITY_CPU},
}


def default_recipe(study: str, device: torch.device | str) -> Recipe:
    """The default recipe of ``study`` for a device type (cuda: the paper's setting on CIFAR-10)."""
    if study not in STUDY_DEFAULTS:
        raise ValueError(f"unknown study {study!r}; choose one of {sorted(STUDY_DEFAULTS)}")
    kind = torch.device(device).type
    table = STUDY_DEFAULTS[study]
    if kind not in table:
        raise ValueError(f"no default {study} recipe for device type {kind!r}; use one of {sorted(table)}")
    return table[kind]


__all__ = ["CPU_DIGITS", "PAPER_CIFAR10", "Recipe", "STUDY_DEFAULTS", "default_recipe"]

# Lesion: residual and plain twins to delete blocks from (Veit et al. 2016: ResNet-110 on CIFAR-10).
LESION_CPU = Recipe(data="digits", batch_size=64, iterations=600, lr=0.1, milestones=(400, 500), eval_every=100,
                    train_eval_samples=600, depths=(32,), seeds=(0, 1, 2))
LESION_GPU = Recipe(data="cifar10", augment="cifar", batch_size=128, iterations=64000, lr=0.1,
                    milestones=(32000, 48000), eval_every=2000, warmup_iterations=400, depths=(110,), seeds=(0, 1, 2))

# Training without normalisation: six variants (BN / none / Fixup / SkipInit) at a shallow and a deep depth.
# lr 0.05 for every variant: at 0.1 (batch 64, digits) Fixup-32 and SkipInit-32 diverged or collapsed to
# chance in 2 of 3 seeds each (Fixup's paper also lowers its scalars' lr 10x, which this study does not).
NORMFREE_CPU = Recipe(data="digits", batch_size=64, iterations=400, lr=0.05, milestones=(300,), eval_every=50,
                      train_eval_samples=600, depths=(8, 32), seeds=(0, 1, 2))
NORMFREE_GPU = Recipe(data="cifar10", augment="cifar", batch_size=128, iterations=32000, lr=0.1,
                      milestones=(16000, 24000), eval_every=1000, warmup_iterations=400,
                      depths=(20, 56, 110), plain_max_depth=56, seeds=(0, 1, 2))
STUDY_DEFAULTS["lesion"] = {"cpu": LESION_CPU, "cuda": LESION_GPU, "mps": LESION_CPU}
STUDY_DEFAULTS["normfree"] = {"cpu": NORMFREE_CPU, "cuda": NORMFREE_GPU, "mps": NORMFREE_CPU}
