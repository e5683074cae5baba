"""MNIST and Fashion-MNIST: the official IDX files (gzipped or not)."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnets.data.config import DataConfig
from resnets.data.errors import DatasetNotFoundError
from resnets.data.paths import user_data_dir
from resnets.data.sources.base import ArrayData
from resnets.io.download import download_file

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class IdxSpec:
    """One IDX dataset: where to download it, its files' md5 (gzipped), system folders, classes."""

    name: str
    base_url: str
    md5: dict[str, str]
    system_dirs: tuple[str, ...]
    torchvision_dir: str
    classes: tuple[str, ...]
    install_hint: str = ""


SPECS: dict[str, IdxSpec] = {
    "mnist": IdxSpec(
        name="mnist",
        base_url="https://ossci-datasets.s3.amazonaws.com/mnist",
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        system_dirs=("/usr/share/datasets/mnist",),
        torchvision_dir="MNIST",
        classes=tuple(str(d) for d in range(10)),
    ),
    "fashion-mnist": IdxSpec(
        name="fashion-mnist",
        base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        torchvision_dir="FashionMNIST",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        install_hint="; on Debian/Ubuntu: `apt-get install dataset-fashion-mnist`",
    ),
}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file of unsigned bytes (gzipped when the name ends in .gz)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4).astype(np.int64)
    expected = int(np.prod(dims))
    data = np.frombuffer(bytearray(raw), dtype=np.uint8, offset=4 + 4 * ndim)  # writable copy
    if data.size != expected:
        raise ValueError(f"{path}: header says {tuple(dims)} ({expected} bytes) but holds {data.size}; the file is truncated")
    return data.reshape(tuple(dims))


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def search_dirs(spec: IdxSpec, root: str | None) -> list[Path]:
    """Folders searched, in order: cfg.root (and its usual sub-folders), else user and system dirs."""
    if root is not None:
        r = Path(root).expanduser()
        return [r, r / spec.name, r / spec.torchvision_dir / "raw"]
    return [user_data_dir(spec.name), *(Path(d) for d in spec.system_dirs)]


def find_files(spec: IdxSpec, root: str | None) -> dict[str, Path] | None:
    """The four IDX files from the first folder that has all of them, else None."""
    for folder in search_dirs(spec, root):
        found = {stem: _find_file(folder, stem) for stem in FILES}
        if all(found.values()):
            return found  # type: ignore[return-value]
    return None


def download_idx(spec: IdxSpec, dest: Path, *, base_url: str | None = None) -> None:
    """Download the four gzipped files into ``dest``, each md5-verified."""
    for filename, md5 in spec.md5.items():
        download_file(base_url or spec.base_url, filename, dest, checksum=f"md5:{md5}")


def load_idx_arrays(cfg: DataConfig) -> ArrayData:
    spec = SPECS[cfg.name]
    files = find_files(spec, cfg.root)
    if files is None and cfg.download:
        dest = Path(cfg.root).expanduser() if cfg.root else user_data_dir(spec.name)
        download_idx(spec, dest)
        files = find_files(spec, cfg.root)
    if files is None:
        dest = Path(cfg.root).expanduser() if cfg.root else user_data_dir(spec.name)
        raise DatasetNotFoundError(
            spec.name,
            search_dirs(spec, cfg.root),
            f"set `download: true` in the data config (fetches {spec.base_url}/<file>.gz into {dest}, "
            f"md5-verified), or put the files {', '.join(s + '[.gz]' for s in FILES)} into one of "
            f"the folders above (or point `root` at them){spec.install_hint}",
        )
    train_x, train_y = read_idx(files[FILES[0]]), read_idx(files[FILES[1]])
    test_x, test_y = read_idx(files[FILES[2]]), read_idx(files[FILES[3]])
    for x, y, split in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{spec.name}: {split} images {x.shape} and labels {y.shape} do not match")
    return ArrayData(
        train_x=train_x[:, None],  # (N, 1, 28, 28)
        train_y=train_y.astype(np.int64),
        test_x=test_x[:, None],
        test_y=test_y.astype(np.int64),
        classes=list(spec.classes),
        origin={"train": [(str(files[FILES[1]]), len(train_y))], "test": [(str(files[FILES[3]]), len(test_y))]},
    )
