"""What one benchmark measures: a typed, validated configuration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from resnets.runtime import Runtime, resolve_device

WORKLOADS: tuple[str, ...] = ("train", "infer")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
TWIN_PRECISIONS: tuple[str, ...] = ("same", "fp32")
COMPILE: tuple[str, ...] = ("off", "both", "ours")
SWITCH: tuple[str, ...] = ("auto", "on", "off")
DATA: tuple[str, ...] = ("digits", "synthetic", "imagefolder")


@dataclass
class BenchConfig:
    """One benchmark: our ``model`` against its twin (see :mod:`resnets.bench.twins`).

    ``batch`` images of ``image_size`` pixels (None: the model's native size). Each
    workload is timed ``reps`` times per side, alternating ours/theirs, after ``warmup``
    untimed steps per side; a repetition runs ``steps`` steps. ``compile``: "both" compiles
    ours and theirs, "ours" only ours. ``graphs``: CUDA graphs for our steps ("auto": on
    CUDA). ``fold``: our inference folds BN into the convolutions. ``data``: time the
    engine's loader + step on that dataset instead of a fixed synthetic batch.
    ``twin_precision``: "same" runs the twin in our precision; "fp32" runs it in fp32 whatever
    ours is (e.g. our bf16 training step against the fp32 loop a user would otherwise run).
    """

    model: str = "resnet20"
    device: str = "auto"
    batch: int = 32
    image_size: int | None = None
    workloads: tuple[str, ...] = WORKLOADS
    precision: str = "auto"
    twin_precision: str = "same"
    channels_last: str = "auto"
    compile: str = "off"
    graphs: str = "auto"
    fold: bool = True
    warmup: int = 3
    reps: int = 5
    steps: int = 10
    memory: bool = True
    data: str | None = None
    data_root: str | None = None
    threads: int | None = None
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workloads = tuple(self.workloads)
        bad = [w for w in self.workloads if w not in WORKLOADS]
        _check(not bad and bool(self.workloads), f"workloads={list(self.workloads)}: each must be one of {WORKLOADS}")
        _check(self.precision in PRECISIONS, f"precision={self.precision!r} is not one of {PRECISIONS}")
        _check(self.twin_precision in TWIN_PRECISIONS,
               f"twin_precision={self.twin_precision!r} is not one of {TWIN_PRECISIONS}")
        _check(self.channels_last in SWITCH, f"channels_last={self.channels_last!r} is not one of {SWITCH}")
        _check(self.graphs in SWITCH, f"graphs={self.graphs!r} is not one of {SWITCH}")
        _check(self.compile in COMPILE, f"compile={self.compile!r} is not one of {COMPILE}")
        _check(self.batch >= 1, f"batch={self.batch} must be >= 1")
        _check(self.image_size is None or self.image_size >= 8, f"image_size={self.image_size} must be >= 8")
        _check(self.warmup >= 1, f"warmup={self.warmup} must be >= 1 (the first steps allocate and tune)")
        _check(self.reps >= 1 and self.steps >= 1, f"reps={self.reps} and steps={self.steps} must be >= 1")
        _check(self.data is None or self.data in DATA, f"data={self.data!r} is not one of {DATA}")
        _check(self.data != "imagefolder" or bool(self.data_root),
               "data='imagefolder' needs the folder: pass data_root (--data imagefolder PATH)")
        _check(self.threads is None or self.threads >= 1, f"threads={self.threads} must be >= 1")

    def runtime(self) -> Runtime:
        """Device, precision and layout with every "auto" resolved by the package's one policy
        (:mod:`resnets.runtime`); a CUDA device where there is none is refused."""
        return Runtime.resolve(device=resolve_device(self.device), precision=self.precision,
                               channels_last=self.channels_last, precision_setting="--precision")

    def twin_runtime(self, ours: Runtime) -> Runtime:
        """The twin's runtime: ours, or ours in fp32 (``twin_precision="fp32"``)."""
        return ours if self.twin_precision == "same" else dataclasses.replace(ours, autocast_dtype=None)

    def use_graphs(self, device: torch.device) -> bool:
        if self.graphs == "on" and device.type != "cuda":
            raise ValueError("graphs='on' needs a CUDA device (CUDA graphs); use graphs='auto' or 'off' on the CPU")
        return device.type == "cuda" if self.graphs == "auto" else self.graphs == "on"


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(f"BenchConfig: {message}")


__all__ = ["BenchConfig", "COMPILE", "DATA", "PRECISIONS", "SWITCH", "TWIN_PRECISIONS", "WORKLOADS"]
