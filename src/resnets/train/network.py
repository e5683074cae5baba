"""Building the configured network, and rebuilding it from a checkpoint's metadata."""

from __future__ import annotations

import dataclasses
import json

from torch import nn

from resnets.models import ModelOptions, create_model
from resnets.train.config import ModelConfig
from resnets.train.configio import from_dict

_SIZED = ("name", "num_classes", "in_chans")


def model_from_config(m: ModelConfig, *, num_classes: int, in_chans: int) -> nn.Module:
    """``create_model`` with every model option of ``m`` (the fields of ``ModelOptions``), so the
    two lists cannot drift apart: a field missing from ``ModelConfig`` fails here at once."""
    options = {f.name: getattr(m, f.name) for f in dataclasses.fields(ModelOptions) if f.name not in _SIZED}
    return create_model(m.name, num_classes=num_classes, in_chans=in_chans, **options)


def options_json(m: ModelConfig) -> str:
    """The model's options (everything but name and sizes) for a checkpoint's metadata."""
    return json.dumps({k: v for k, v in dataclasses.asdict(m).items() if k not in _SIZED})


def model_from_metadata(meta: dict[str, str]) -> nn.Module:
    """Rebuild (untrained) the network a checkpoint's metadata describes."""
    missing = [k for k in ("model", "num_classes", "in_chans", "model_options") if k not in meta]
    if missing:
        raise ValueError(
            f"the checkpoint's metadata lacks {missing}; it was not written by `resnets train` "
            "(to load bare weights use resnets.models.load_pretrained)"
        )
    cfg = from_dict(ModelConfig, {"name": meta["model"], **json.loads(meta["model_options"])}, prefix="model.")
    return model_from_config(cfg, num_classes=int(meta["num_classes"]), in_chans=int(meta["in_chans"]))
