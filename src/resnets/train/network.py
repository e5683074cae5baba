"""Building the configured network, and its options for a checkpoint's metadata (rebuilding it from
that metadata is :func:`resnets.io.runs.model_from_metadata`)."""

from __future__ import annotations

import dataclasses
import json

from torch import nn

from resnets.models import ModelOptions, create_model
from resnets.train.config import ModelConfig

_SIZED = ("name", "num_classes", "in_chans")


def model_from_config(m: ModelConfig, *, num_classes: int, in_chans: int) -> nn.Module:
    """``create_model`` with every model option of ``m`` (the fields of ``ModelOptions``), so the
    two lists cannot drift apart: a field missing from ``ModelConfig`` fails here at once."""
    options = {f.name: getattr(m, f.name) for f in dataclasses.fields(ModelOptions) if f.name not in _SIZED}
    return create_model(m.name, num_classes=num_classes, in_chans=in_chans, **options)


def options_json(m: ModelConfig) -> str:
    """The model's options (everything but name and sizes) for a checkpoint's metadata."""
    return json.dumps({k: v for k, v in dataclasses.asdict(m).items() if k not in _SIZED})
