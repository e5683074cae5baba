from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnets.data import DataConfig, DatasetNotFoundError, load_data
from resnets.data.decode import decode_image


def _img(path: Path, color: tuple[int, int, int], size: int = 12, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).convert(mode).save(path)


def make_folder(root: Path, *, per_class: int = 6, size: int = 12) -> dict[str, Path]:
    """Three classes of flat-colour PNGs plus every awkward kind of file."""
    colors = {"cat": (200, 30, 30), "dog": (30, 200, 30), "emu": (30, 30, 200)}
    for name, color in colors.items():
        for i in range(per_class):
            _img(root / name / f"{i}.png", color, size)
    special = {
        "grey": root / "cat" / "grey.png",
        "rgba": root / "dog" / "rgba.png",
        "palette": root / "emu" / "palette.gif",
        "sixteen": root / "emu" / "sixteen.png",
        "corrupt": root / "cat" / "corrupt.jpg",
        "empty": root / "dog" / "empty.jpg",
    }
    Image.new("L", (size, size), 128).save(special["grey"])
    Image.new("RGBA", (size, size), (10, 20, 30, 40)).save(special["rgba"])
    Image.new("RGB", (size, size), (30, 30, 200)).convert("P").save(special["palette"])
    Image.fromarray(np.full((size, size), 65535, dtype=np.uint16)).save(special["sixteen"])
    special["corrupt"].write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    special["empty"].write_bytes(b"")
    (root / "zebra").mkdir()  # an empty class
    (root / "cat" / "notes.txt").write_text("not an image")
    return special


def test_conversions(tmp_path: Path) -> None:
    special = make_folder(tmp_path)
    for key in ("grey", "rgba", "palette", "sixteen"):
        arr = decode_image(special[key], size=12)
        assert arr is not None and arr.shape == (3, 12, 12) and arr.dtype == np.uint8, key
    assert decode_image(special["grey"], size=12)[:, 0, 0].tolist() == [128, 128, 128]
    assert decode_image(special["sixteen"], size=12)[:, 0, 0].tolist() == [255, 255, 255]  # scaled, not clipped
    assert decode_image(special["corrupt"], size=12) is None


def test_folder_in_memory_skips_bad_files_once(tmp_path: Path) -> None:
    special = make_folder(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        b = load_data(DataConfig(name="imagefolder", root=str(tmp_path), val_fraction=0.25, batch_size=4))
    messages = [str(w.message) for w in caught]
    assert sum(str(special["corrupt"]) in m for m in messages) == 1
    assert sum(str(special["empty"]) in m for m in messages) == 1
    assert any("zebra" in m for m in messages)
    assert b.classes == ["cat", "dog", "emu", "zebra"] and b.num_classes == 4
    assert b.train.num_samples + b.val.num_samples == 18 + 4  # 6 per class + 4 readable specials
    assert b.test is None and b.device_resident and b.augment == "cifar"
    x, y = next(b.train.epoch(0))
    assert x.shape == (4, 3, 12, 12)


def test_train_val_test_layout(tmp_path: Path) -> None:
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        for name, color in (("a", (255, 0, 0)), ("b", (0, 0, 255))):
            for i in range(n):
                _img(tmp_path / split / name / f"{i}.png", color)
    b = load_data(DataConfig(name="imagefolder", root=str(tmp_path), batch_size=2))
    assert (b.train.num_samples, b.val.num_samples, b.test.num_samples) == (8, 4, 6)
    assert np.allclose(b.mean, (0.5, 0.0, 0.5), atol=1e-6)  # statistics from train/ only


def test_unknown_class_in_test_is_an_error(tmp_path: Path) -> None:
    _img(tmp_path / "train" / "a" / "0.png", (1, 2, 3))
    _img(tmp_path / "test" / "b" / "0.png", (1, 2, 3))
    with pytest.raises(ValueError, match="not among the training classes"):
        load_data(DataConfig(name="imagefolder", root=str(tmp_path), batch_size=1, val_fraction=0))


def test_missing_folder_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"(?s)nowhere.*class sub-folders"):
        load_data(DataConfig(name="imagefolder", root=str(tmp_path / "nowhere")))
    with pytest.raises(ValueError, match="needs `root`"):
        load_data(DataConfig(name="imagefolder"))


def test_decode_cache_reused(tmp_path: Path) -> None:
    make_folder(tmp_path / "imgs")
    cfg = DataConfig(name="imagefolder", root=str(tmp_path / "imgs"), batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = load_data(cfg)
        cache = Path(os.environ["RESNETS_CACHE"])
        files = sorted(cache.glob("folder-*.npy"))
        assert len(files) == 2
        b = load_data(cfg)
    assert torch.equal(a.train.images, b.train.images)
    assert sorted(cache.glob("folder-*.npy")) == files


def test_dataloader_path_deterministic_and_resumable(tmp_path: Path) -> None:
    make_folder(tmp_path, per_class=8)
    cfg = DataConfig(name="imagefolder", root=str(tmp_path), batch_size=4, device_resident="no", augment="cifar")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = load_data(cfg)
        assert not b.device_resident
        full = list(b.train.epoch(2))
        tail = list(b.train.epoch(2, start=2))
        other = list(b.train.epoch(3))
    assert len(tail) == len(full) - 2
    for (xa, ya), (xb, yb) in zip(full[2:], tail):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not all(torch.equal(a[1], o[1]) for a, o in zip(full, other))
    assert full[0][0].shape[1:] == (3, 12, 12)


def test_dataloader_path_skips_corrupt_file(tmp_path: Path) -> None:
    special = make_folder(tmp_path, per_class=3)
    cfg = DataConfig(name="imagefolder", root=str(tmp_path), batch_size=4, device_resident="no", val_fraction=0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        b = load_data(cfg)
        served = sum(x.shape[0] for x, _ in b.val.epoch(0)) + sum(x.shape[0] for x, _ in b.train.epoch(0))
    paths = b.val.dataset.paths + b.train.dataset.paths
    assert str(special["corrupt"]) in paths and str(special["empty"]) not in paths
    expected = b.val.num_samples + len(b.train) * 4 - 1  # the corrupt file is in the sampled files
    if str(special["corrupt"]) in b.train.dataset.paths:
        pos = b.train.dataset.paths.index(str(special["corrupt"]))
        if pos not in b.train.indices(0)[: len(b.train) * 4]:
            expected += 1  # the corrupt file fell in the dropped tail this epoch
    assert served == expected
    assert any(str(special["corrupt"]) in str(w.message) for w in caught)


def test_decode_cache_says_where_and_how_big(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_folder(tmp_path / "imgs")
    cfg = DataConfig(name="imagefolder", root=str(tmp_path / "imgs"), batch_size=4)
    with warnings.catch_warnings(), caplog.at_level("INFO", logger="resnets.data.decode"):
        warnings.simplefilter("ignore")
        bundle = load_data(cfg)
        built = [r.getMessage() for r in caplog.records]
        caplog.clear()
        load_data(cfg)
        reused = [r.getMessage() for r in caplog.records]
    [images] = Path(os.environ["RESNETS_CACHE"]).glob("folder-*.images.npy")
    megabytes = f"{images.stat().st_size / 1e3:.1f} kB"  # 23 images of 12x12x3 bytes, and a header
    assert built[0].startswith("decode cache: decoding ") and str(images) in built[0]  # said before decoding
    assert built[1].startswith(f"decode cache: wrote {images} ({megabytes})")
    assert reused == [f"decode cache: reusing {images} ({megabytes}, 23 images of 12 px)"]  # the empty file is left out
    assert bundle.source == str(tmp_path / "imgs")
