"""An image folder full of trouble: truncated JPEGs, zero-byte and non-image files, a
decompression bomb, grey / CMYK / RGBA / 16-bit images, an unreadable file and an empty class.
Loading keeps every valid image (whatever its mode), lists each bad file exactly once, and
training runs on what is valid."""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnets.data import DataConfig, load_data
from resnets.train import config_from_mapping, run

SIZE = 16


def _rgb(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))


def _bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels (far past PIL's bomb limit)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _chmod_blocks_reads(path: Path) -> bool:
    """False when running as root (or on a file system where chmod 000 does not stop reads)."""
    os.chmod(path, 0)
    try:
        path.read_bytes()
    except PermissionError:
        return True
    return False


def make_folder(root: Path) -> tuple[int, list[Path]]:
    """Classes ``a`` (4 plain + 4 odd-mode images), ``b`` (6 plain) and ``c`` (empty), plus bad
    files; returns (number of valid images, the bad files)."""
    a, b = root / "a", root / "b"
    for folder in (a, b, root / "c"):
        folder.mkdir(parents=True)
    for i in range(4):
        _rgb(i).save(a / f"{i:02d}.jpg", quality=95)
    for i in range(6):
        _rgb(10 + i).save(b / f"{i:02d}.png")
    odd = np.random.default_rng(99).integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    Image.fromarray(odd).save(a / "grey.png")
    Image.new("CMYK", (SIZE, SIZE), (10, 200, 30, 5)).save(a / "cmyk.jpg")
    _rgb(7).convert("RGBA").save(a / "rgba.png")
    Image.fromarray(odd.astype(np.uint16) * 257).save(a / "deep16.png")
    valid = 14

    buffer = io.BytesIO()
    _rgb(50).resize((64, 64)).save(buffer, format="JPEG")
    bad = [a / "truncated.jpg", a / "empty.jpg", b / "notes.jpg", b / "bomb.png"]
    bad[0].write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    bad[1].write_bytes(b"")
    bad[2].write_text("these are not pixels\n")
    bad[3].write_bytes(_bomb_png(100_000, 100_000))
    (b / "README.txt").write_text("not an image extension: not an image file of the dataset\n")
    locked = b / "locked.png"
    _rgb(60).save(locked)
    if _chmod_blocks_reads(locked):
        bad.append(locked)
    else:
        os.chmod(locked, 0o644)
        valid += 1  # as root the file reads fine, so it is simply a valid image
    return valid, bad


def _load(root: Path, resident: str) -> tuple[object, list[str], list[int]]:
    cfg = DataConfig(name="imagefolder", root=str(root), batch_size=4, val_fraction=0.25, augment="none",
                     image_size=SIZE, device_resident=resident)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every warning counts, duplicates included
        bundle = load_data(cfg)
        seen = [sum(int(y.shape[0]) for _, y in loader.epoch(0)) for loader in (bundle.train, bundle.val)]
    return bundle, [str(w.message) for w in caught], seen


@pytest.mark.parametrize("resident", ("auto", "no"))  # decoded once in memory / decoded per batch
def test_bad_files_are_listed_once_and_the_valid_ones_kept(tmp_path: Path, resident: str) -> None:
    valid, bad = make_folder(tmp_path / "folder")
    bundle, messages, (train_seen, val_seen) = _load(tmp_path / "folder", resident)
    assert bundle.classes == ["a", "b", "c"] and bundle.in_chans == 3
    if resident == "auto":  # decoded up front: the bad files are gone before batching
        assert bundle.train.num_samples + bundle.val.num_samples == valid
        assert train_seen == len(bundle.train) * 4 and val_seen == bundle.val.num_samples
    else:  # decoded per batch: a batch holding a bad file comes out smaller
        paths = bundle.train.dataset.paths
        full = bundle.train.indices(0)[: len(bundle.train) * 4]
        assert train_seen == sum(paths[i] not in map(str, bad) for i in full)
        assert val_seen == sum(p not in map(str, bad) for p in bundle.val.dataset.paths)
        assert len(bundle.train.dataset.paths) + len(bundle.val.dataset.paths) == valid + len(bad) - 1  # all but empty.jpg
    for path in bad:
        assert sum(str(path) in m for m in messages) == 1, (path, messages)
    assert sum("['c']" in m and "no training images" in m for m in messages) == 1, messages
    assert not any("README.txt" in m for m in messages)
    x, _ = next(iter(bundle.train.epoch(0)))
    assert x.shape[1:] == (3, SIZE, SIZE) and bool(x.isfinite().all())


def test_training_goes_on_with_the_valid_images(tmp_path: Path) -> None:
    valid, bad = make_folder(tmp_path / "folder")
    recipe = {
        "model": {"name": "resnet20"},
        "data": {"name": "imagefolder", "root": str(tmp_path / "folder"), "batch_size": 4, "val_fraction": 0.25,
                 "augment": "none", "image_size": SIZE},
        "train": {"iterations": 3, "eval_every": 3, "threads": 1, "tensorboard": False,
                  "out_dir": str(tmp_path / "runs")},
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(config_from_mapping(recipe), device="cpu", quiet=True)
    assert result.step == 3 and all(np.isfinite(result.losses))
    assert result.model.num_classes == 3  # the empty class keeps its place in the head
    messages = [str(w.message) for w in caught]
    for path in bad:
        assert sum(str(path) in m for m in messages) == 1, (path, messages)
