"""Training: typed recipes, the engine, checkpoints, fine-tuning, prediction.

>>> from resnets.train import load_config, run
>>> result = run(load_config("demo", ["train.epochs=2"]))   # a shipped recipe, or a YAML file
"""

from resnets.runtime import Runtime
from resnets.train.assemble import PreparedRun, build_model, prepare_run
from resnets.train.config import (
    FinetuneConfig,
    LoopConfig,
    ModelConfig,
    OptimConfig,
    ScheduleConfig,
    TrainConfig,
    validate,
)
from resnets.train.configio import ConfigError, config_from_mapping, dump_config, load_config
from resnets.train.engine import NonFiniteLossError, fit
from resnets.train.evaluate import evaluate
from resnets.train.interrupt import TrainingInterrupted
from resnets.train.runner import RunResult, run
from resnets.train.runtime import make_runtime
from resnets.train.schedule import LRSchedule, lr_at, resolve_schedule

__all__ = [
    "ConfigError",
    "FinetuneConfig",
    "LRSchedule",
    "LoopConfig",
    "ModelConfig",
    "NonFiniteLossError",
    "OptimConfig",
    "PreparedRun",
    "RunResult",
    "Runtime",
    "ScheduleConfig",
    "TrainConfig",
    "TrainingInterrupted",
    "build_model",
    "config_from_mapping",
    "dump_config",
    "evaluate",
    "fit",
    "load_config",
    "prepare_run",
    "lr_at",
    "make_runtime",
    "resolve_schedule",
    "run",
    "validate",
]
