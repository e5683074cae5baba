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


def write_cifar10(root: Path, *, per_batch: int = 8, labels: list[int] | None = None,
                  data: Any = None, test_batch: Any = None) -> Path:
    """A tiny CIFAR-10 folder of official-format batches under ``root/cifar-10-batches-py``;
    ``labels`` / ``data`` replace those of data_batch_3, ``test_batch`` replaces the test batch's
    bytes (e.g. a crafted pickle). Returns the batch folder."""
    import pickle

    import numpy as np

    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"labels": [i % 10 for i in range(per_batch)],
                 "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)}
        if name == "data_batch_3":
            batch["labels"] = labels if labels is not None else batch["labels"]
            batch["data"] = data if data is not None else batch["data"]
        raw = pickle.dumps(batch, protocol=2)
        (folder / name).write_bytes(test_batch if name == "test_batch" and test_batch is not None else raw)
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}, protocol=2))
    return folder


class RunsCode:
    """Unpickling this runs a shell command that creates ``marker`` (a crafted pickle)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        import os

        return (os.system, (f"touch {self.marker}",))


def as_unprivileged() -> list[str] | None:
    """A command prefix that runs a process without root's right to write anywhere (``setpriv``
    to nobody), [] when this process is not root, None when neither is possible."""
    import os
    import shutil

    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] if setpriv else None
