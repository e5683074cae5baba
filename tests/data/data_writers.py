"""Writers of tiny datasets in the official file formats (IDX, CIFAR pickle batches)."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dataset(
    folder: Path, *, n_train: int = 60, n_test: int = 20, gz: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in arrays.items():
        data = idx_bytes(arr)
        if gz:
            (folder / (stem + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return arrays


def _batch(n: int, rng: np.random.Generator, label_key: str, num_classes: int) -> dict:
    return {
        "batch_label": "tiny batch",
        label_key: [int(v) for v in np.arange(n) % num_classes],
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{i}.png" for i in range(n)],
    }


def cifar_files(kind: str, *, per_batch: int = 20, seed: int = 0) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    if kind == "cifar10":
        files = {f"data_batch_{i}": _batch(per_batch, rng, "labels", 10) for i in range(1, 6)}
        files["test_batch"] = _batch(per_batch, rng, "labels", 10)
        files["batches.meta"] = {"label_names": [f"name{i}" for i in range(10)], "num_cases_per_batch": per_batch}
    else:
        files = {"train": _batch(per_batch * 5, rng, "fine_labels", 100), "test": _batch(per_batch, rng, "fine_labels", 100)}
        files["meta"] = {"fine_label_names": [f"fine{i}" for i in range(100)], "coarse_label_names": ["c"] * 20}
    return files


def write_cifar(folder: Path, kind: str, *, archive: bool = False, per_batch: int = 20) -> dict[str, dict]:
    files = cifar_files(kind, per_batch=per_batch)
    inner = "cifar-10-batches-py" if kind == "cifar10" else "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    if archive:
        name = "cifar-10-python.tar.gz" if kind == "cifar10" else "cifar-100-python.tar.gz"
        with tarfile.open(folder / name, "w:gz") as tar:
            for fname, content in files.items():
                data = pickle.dumps(content, protocol=2)
                info = tarfile.TarInfo(f"{inner}/{fname}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        (folder / inner).mkdir(exist_ok=True)
        for fname, content in files.items():
            (folder / inner / fname).write_bytes(pickle.dumps(content))
    return files
