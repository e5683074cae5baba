"""Recipes shared by the training tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def tiny_recipe(out_dir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A CPU-cheap recipe: ResNet-20 on 8x8 one-channel synthetic images, deterministic."""
    recipe: dict[str, Any] = {
        "model": {"name": "resnet20"},
        "data": {"name": "synthetic", "synthetic_shape": [1, 8, 8], "synthetic_classes": 3,
                 "synthetic_size": 96, "batch_size": 16, "val_fraction": 0.2},
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
        "schedule": {"name": "cosine", "unit": "iter", "warmup": 2},
        "train": {"iterations": 10, "eval_every": 4, "deterministic": True, "threads": 1,
                  "tensorboard": False, "out_dir": str(out_dir), "name": "tiny"},
    }
    for key, values in sections.items():
        recipe[key] = {**recipe.get(key, {}), **values}
    return recipe
