"""CIFAR-10 and CIFAR-100: the official python pickle batches, as files or inside the .tar.gz.

The batches are plain dicts of numpy arrays and lists; they are read with a restricted
unpickler that only rebuilds numpy arrays, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnets.data.config import DataConfig
from resnets.data.download import download_file
from resnets.data.errors import DatasetNotFoundError
from resnets.data.paths import user_data_dir
from resnets.data.sources.base import ArrayData

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: a CIFAR batch holds only numpy arrays and lists "
            f"(the file is not an official CIFAR batch, or has been tampered with)"
        )


def safe_unpickle(data: bytes) -> dict[str, Any]:
    """Unpickle a CIFAR batch (Python 2 or 3 pickle) allowing only numpy array reconstruction."""
    obj = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    if not isinstance(obj, dict):
        raise ValueError(f"a CIFAR batch is a dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


@dataclass(frozen=True)
class CifarSpec:
    name: str
    folder: str  # inside the archive
    archive: str
    url: str
    md5: str
    train_files: tuple[str, ...]
    test_file: str
    label_key: str
    meta_file: str
    names_key: str


SPECS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        "cifar10", "cifar-10-batches-py", "cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz",
        "c58f30108f718f92721af3b95e74349a", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
        "labels", "batches.meta", "label_names",
    ),
    "cifar100": CifarSpec(
        "cifar100", "cifar-100-python", "cifar-100-python.tar.gz", "https://www.cs.toronto.edu/~kriz",
        "eb9058c3a382ffc7106e4002c42a8d85", ("train",), "test", "fine_labels", "meta", "fine_label_names",
    ),
}

Reader = Callable[[str], bytes | None]  # member name -> bytes (None when absent)


def _dir_reader(folder: Path) -> Reader:
    return lambda name: (folder / name).read_bytes() if (folder / name).is_file() else None


def _tar_reader(archive: Path, folder: str) -> Reader:
    tar = tarfile.open(archive, "r:gz")
    members = {m.name: m for m in tar.getmembers() if m.isfile()}

    def read(name: str) -> bytes | None:
        member = members.get(f"{folder}/{name}")
        handle = tar.extractfile(member) if member is not None else None
        return handle.read() if handle is not None else None

    return read


def search_places(spec: CifarSpec, root: str | None) -> list[Path]:
    base = Path(root).expanduser() if root is not None else user_data_dir(spec.name)
    return [base / spec.folder, base, base / spec.archive]


def find_reader(spec: CifarSpec, root: str | None) -> Reader | None:
    """A reader over the first place holding every batch: a folder, or the .tar.gz archive."""
    needed = (*spec.train_files, spec.test_file)
    for place in search_places(spec, root):
        if place.is_dir() and all((place / n).is_file() for n in needed):
            return _dir_reader(place)
        if place.is_file() and place.name.endswith(".tar.gz"):
            return _tar_reader(place, spec.folder)
    return None


def _batch(reader: Reader, name: str, spec: CifarSpec) -> tuple[np.ndarray, np.ndarray]:
    raw = reader(name)
    if raw is None:
        raise FileNotFoundError(f"{spec.name}: batch {name!r} missing from {spec.folder}")
    d = safe_unpickle(raw)
    x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)  # (N, 3, 32, 32)
    y = np.asarray(d[spec.label_key], dtype=np.int64)
    if len(x) != len(y):
        raise ValueError(f"{spec.name}: batch {name!r} has {len(x)} images but {len(y)} labels")
    return x, y


def _class_names(reader: Reader, spec: CifarSpec, num_classes: int) -> list[str]:
    raw = reader(spec.meta_file)
    if raw is None:
        return [str(i) for i in range(num_classes)]
    names = safe_unpickle(raw)[spec.names_key]
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def load_cifar_arrays(cfg: DataConfig) -> ArrayData:
    spec = SPECS[cfg.name]
    reader = find_reader(spec, cfg.root)
    dest = Path(cfg.root).expanduser() if cfg.root is not None else user_data_dir(spec.name)
    if reader is None and cfg.download:
        download_file(spec.url, spec.archive, dest, checksum=f"md5:{spec.md5}")
        reader = find_reader(spec, cfg.root)
    if reader is None:
        raise DatasetNotFoundError(
            spec.name,
            search_places(spec, cfg.root),
            f"set `download: true` in the data config (fetches {spec.url}/{spec.archive} into {dest}, "
            f"md5-verified), or put {spec.archive} (or its unpacked {spec.folder}/ folder) there, "
            f"or point `root` at the folder that holds it",
        )
    parts = [_batch(reader, n, spec) for n in spec.train_files]
    test_x, test_y = _batch(reader, spec.test_file, spec)
    train_y = np.concatenate([y for _, y in parts])
    num_classes = max(int(train_y.max()) + 1, 10 if spec.name == "cifar10" else 100)
    return ArrayData(
        train_x=np.concatenate([x for x, _ in parts]),
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        classes=_class_names(reader, spec, num_classes),
    )
