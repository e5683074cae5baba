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
from resnets.data.errors import DatasetNotFoundError
from resnets.data.paths import user_data_dir
from resnets.data.sources.base import ArrayData
from resnets.io.download import download_file

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
    num_classes: int


SPECS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        "cifar10", "cifar-10-batches-py", "cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz",
        "c58f30108f718f92721af3b95e74349a", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
        "labels", "batches.meta", "label_names", 10,
    ),
    "cifar100": CifarSpec(
        "cifar100", "cifar-100-python", "cifar-100-python.tar.gz", "https://www.cs.toronto.edu/~kriz",
        "eb9058c3a382ffc7106e4002c42a8d85", ("train",), "test", "fine_labels", "meta", "fine_label_names", 100,
    ),
}

@dataclass(frozen=True)
class Reader:
    """Reads the batch files of one place (a folder or the .tar.gz); ``where(name)`` names one."""

    read: Callable[[str], bytes | None]  # member name -> bytes (None when absent)
    where: Callable[[str], str]

    def __call__(self, name: str) -> bytes | None:
        return self.read(name)


def _dir_reader(folder: Path) -> Reader:
    return Reader(lambda name: (folder / name).read_bytes() if (folder / name).is_file() else None,
                  lambda name: str(folder / name))


def _tar_reader(archive: Path, folder: str) -> Reader:
    try:
        tar = tarfile.open(archive, "r:gz")
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(f"{archive} cannot be read as a .tar.gz ({exc}); it is damaged or truncated: "
                         "delete it and download it again (download: true)") from None

    def read(name: str) -> bytes | None:
        member = members.get(f"{folder}/{name}")
        handle = tar.extractfile(member) if member is not None else None
        return handle.read() if handle is not None else None

    return Reader(read, lambda name: f"{archive}:{folder}/{name}")


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


IMAGE_BYTES = 3 * 32 * 32


def _read_batch(reader: Reader, name: str, spec: CifarSpec) -> dict[str, Any]:
    """A batch file unpickled (numpy arrays only); anything else is a ValueError naming it."""
    raw = reader(name)
    if raw is None:
        raise FileNotFoundError(f"{spec.name}: batch {name!r} missing from {spec.folder}")
    fix = f"it is damaged or not an official {spec.name} batch: replace it (download: true fetches it again)"
    try:
        return safe_unpickle(raw)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{reader.where(name)} is refused: {exc}; {fix}") from None
    except Exception as exc:  # truncated or garbage bytes: EOFError, ValueError, ... from the unpickler
        raise ValueError(f"{reader.where(name)} cannot be read ({type(exc).__name__}: {exc}); {fix}") from None


def _batch(reader: Reader, name: str, spec: CifarSpec) -> tuple[np.ndarray, np.ndarray]:
    d = _read_batch(reader, name, spec)
    fix = f"the file is damaged or not an official {spec.name} batch: replace it (download: true fetches it again)"
    missing = [k for k in ("data", spec.label_key) if k not in d]
    if missing:
        raise ValueError(f"{reader.where(name)} has no {missing[0]!r} entry; {fix}")
    try:
        data = np.asarray(d["data"], dtype=np.uint8)
        y = np.asarray(d[spec.label_key], dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{reader.where(name)}: its arrays are not numbers ({exc}); {fix}") from None
    if data.ndim != 2 or data.shape[1] != IMAGE_BYTES or y.ndim != 1:
        raise ValueError(f"{reader.where(name)} holds data of shape {data.shape} and labels of shape {y.shape}; "
                         f"a CIFAR batch holds (N, {IMAGE_BYTES}) bytes (32x32 RGB) and N labels; {fix}")
    if len(data) != len(y):
        raise ValueError(f"{reader.where(name)} has {len(data)} images but {len(y)} labels; {fix}")
    return data.reshape(-1, 3, 32, 32), y  # (N, 3, 32, 32)


def _class_names(reader: Reader, spec: CifarSpec, num_classes: int) -> list[str]:
    raw = reader(spec.meta_file)
    if raw is None:
        return [str(i) for i in range(num_classes)]
    names = _read_batch(reader, spec.meta_file, spec).get(spec.names_key)
    if not isinstance(names, (list, tuple)) or len(names) != num_classes:
        raise ValueError(f"{reader.where(spec.meta_file)}: {spec.names_key!r} should list the {num_classes} class "
                         f"names; the file is damaged: replace it (download: true fetches it again)")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]


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
    return ArrayData(
        train_x=np.concatenate([x for x, _ in parts]),
        train_y=np.concatenate([y for _, y in parts]),
        test_x=test_x,
        test_y=test_y,
        classes=_class_names(reader, spec, spec.num_classes),
        origin={"train": [(reader.where(n), len(y)) for n, (_, y) in zip(spec.train_files, parts)],
                "test": [(reader.where(spec.test_file), len(test_y))]},
    )
