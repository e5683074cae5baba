"""Recipes and small files shared by the robustness tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
PYTHON_PATHS = [str(REPO / "src"), str(Path(__file__).resolve().parent)]


def tiny_recipe(out_dir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """ResNet-20 on 8x8 one-channel synthetic images (76 training images, 4 steps per epoch),
    deterministic, one thread, a checkpoint after every step."""
    recipe: dict[str, Any] = {
        "model": {"name": "resnet20"},
        "data": {"name": "synthetic", "synthetic_shape": [1, 8, 8], "synthetic_classes": 3,
                 "synthetic_size": 96, "batch_size": 16, "val_fraction": 0.2},
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
        "schedule": {"name": "cosine", "unit": "iter", "warmup": 2},
        "train": {"iterations": 8, "eval_every": 4, "checkpoint_every": 1, "deterministic": True,
                  "threads": 1, "tensorboard": False, "out_dir": str(out_dir), "name": "tiny"},
    }
    for key, values in sections.items():
        recipe[key] = {**recipe.get(key, {}), **values}
    return recipe


def write_recipe(path: Path, recipe: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def run_dirs(out_dir: Path, name: str = "tiny") -> list[Path]:
    return sorted(p for p in Path(out_dir).glob(f"{name}-*") if p.is_dir())
