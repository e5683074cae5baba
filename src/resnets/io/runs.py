"""A trained run, read back: its checkpoint's metadata, its recipe and its network with the
trained weights. What ``resnets predict``, ``eval``, ``export`` and ``quantize`` start from.

>>> run = open_run("runs/demo-20260101-120000")       # a run directory, a tag path or a .safetensors file
>>> model = run.load_model()                           # rebuilt from the metadata, the weights loaded
>>> run.classes, run.image_size, run.recipe()["data"]["name"]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from resnets.io.checkpoint import apply_weights, load_checkpoint, read_metadata, resolve_checkpoint
from resnets.models import ResNet, create_model

_DESCRIBED_BY = ("model", "num_classes", "in_chans", "model_options")  # what rebuilds the network


def model_from_metadata(meta: dict[str, str]) -> ResNet:
    """Rebuild (untrained) the network a checkpoint's metadata describes; its options are checked
    where every model's are, by :func:`resnets.models.create_model`."""
    missing = [k for k in _DESCRIBED_BY if k not in meta]
    if missing:
        raise ValueError(
            f"the checkpoint's metadata lacks {missing}; it was not written by `resnets train` "
            "(to load bare weights use resnets.models.load_pretrained)"
        )
    options = json.loads(meta["model_options"])
    return create_model(meta["model"], num_classes=int(meta["num_classes"]), in_chans=int(meta["in_chans"]),
                        **options)


@dataclass(frozen=True)
class TrainedRun:
    """A checkpoint written by ``resnets train`` (or ``resnets convert``): ``path`` is its weights
    file, ``metadata`` the strings stored with it."""

    path: Path
    metadata: dict[str, str]

    def recipe(self) -> dict[str, Any]:
        """The resolved recipe the run was trained with (the sections of its config.yaml)."""
        if "config" not in self.metadata:
            raise ValueError(f"{self.path} carries no training config; it was not written by `resnets train` "
                             "(give a run directory written by `resnets train`)")
        return dict(yaml.safe_load(self.metadata["config"]))

    def build_model(self) -> ResNet:
        """The network, untrained (see :func:`model_from_metadata`)."""
        return model_from_metadata(self.metadata)

    def load_model(self) -> ResNet:
        """The network with the trained weights, on the CPU; weights that do not fit the network
        the metadata describes are refused with a message saying what the file holds."""
        model = self.build_model()
        apply_weights(model, load_checkpoint(self.path, with_state=False), path=self.path)
        return model

    @property
    def classes(self) -> list[str]:
        return list(json.loads(self.metadata["classes"]))

    @property
    def in_chans(self) -> int:
        return int(self.metadata["in_chans"])

    @property
    def image_size(self) -> int | None:
        """The side the network was trained at (None where the metadata does not say)."""
        return int(self.metadata.get("image_size", "0")) or None

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(json.loads(self.metadata["mean"]))

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(json.loads(self.metadata["std"]))

    @property
    def crop_fraction(self) -> float:
        return float(self.metadata.get("crop_fraction", "1.0"))


def open_run(path: str | Path) -> TrainedRun:
    """The trained run at ``path`` (a run directory: its best, else last checkpoint; a tag path;
    or a .safetensors file); reads the metadata only (the weights are read by ``load_model``)."""
    weights = resolve_checkpoint(path)
    return TrainedRun(path=weights, metadata=read_metadata(weights))


__all__ = ["TrainedRun", "model_from_metadata", "open_run"]
