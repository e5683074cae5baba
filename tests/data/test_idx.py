from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from data_writers import idx_bytes, write_idx_dataset

from resnets.data import DataConfig, DatasetNotFoundError, load_data
from resnets.data.sources import idx
from resnets.data.sources.idx import read_idx


@pytest.mark.parametrize("gz", [True, False])
def test_idx_dataset_from_root(tmp_path: Path, gz: bool) -> None:
    arrays = write_idx_dataset(tmp_path, gz=gz)
    b = load_data(DataConfig(name="mnist", root=str(tmp_path), val_fraction=0.1, batch_size=8))
    assert (b.in_chans, b.image_size, b.num_classes) == (1, 28, 10)
    assert b.train.num_samples + b.val.num_samples == 60
    assert b.test.num_samples == 20
    assert b.augment == "shift"
    assert np.array_equal(b.test.images[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    expected_mean = b.train.images.double().mean().item() / 255
    assert abs(b.mean[0] - expected_mean) < 1e-9


def test_idx_found_in_user_data_dir(tmp_path: Path) -> None:
    write_idx_dataset(Path(os.environ["RESNETS_DATA"]) / "fashion-mnist")
    b = load_data(DataConfig(name="fashion-mnist", batch_size=8))
    assert b.classes[0] == "T-shirt/top" and b.test.num_samples == 20


def test_truncated_idx_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((4, 3, 3), np.uint8))[:-5]))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_missing_dataset_names_places_and_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = idx.SPECS["fashion-mnist"]
    monkeypatch.setitem(idx.SPECS, "fashion-mnist", idx.IdxSpec(**{**spec.__dict__, "system_dirs": (str(tmp_path / "none"),)}))
    with pytest.raises(DatasetNotFoundError) as info:
        load_data(DataConfig(name="fashion-mnist"))
    message = str(info.value)
    assert str(Path(os.environ["RESNETS_DATA"]) / "fashion-mnist") in message
    assert str(tmp_path / "none") in message
    assert "download: true" in message and "apt-get install dataset-fashion-mnist" in message


def test_download_then_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    write_idx_dataset(mirror)
    from resnets.io.download import file_checksum

    md5 = {f.name: file_checksum(f, algorithm="md5") for f in mirror.iterdir()}
    spec = idx.IdxSpec(**{**idx.SPECS["mnist"].__dict__, "base_url": mirror.as_uri(), "md5": md5})
    monkeypatch.setitem(idx.SPECS, "mnist", spec)
    dest = tmp_path / "dest"
    b = load_data(DataConfig(name="mnist", root=str(dest), download=True, batch_size=8))
    assert sorted(p.name for p in dest.iterdir()) == sorted(md5)
    assert b.test.num_samples == 20


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist() -> None:
    b = load_data(DataConfig(name="fashion-mnist", val_fraction=0.0, batch_size=1000))
    assert b.train.num_samples == 60_000 and b.test.num_samples == 10_000
    labels = b.train.labels
    assert int(labels.min()) == 0 and int(labels.max()) == 9
    assert np.all(np.bincount(labels.numpy(), minlength=10) == 6000)
    assert 0.28 < b.mean[0] < 0.29  # the published Fashion-MNIST training mean, 0.2860
