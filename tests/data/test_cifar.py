from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from data_writers import write_cifar

from resnets.data import DataConfig, DatasetNotFoundError, load_data
from resnets.data.sources.cifar import safe_unpickle


@pytest.mark.parametrize("archive", [False, True])
def test_cifar10_batches(tmp_path: Path, archive: bool) -> None:
    files = write_cifar(tmp_path, "cifar10", archive=archive)
    b = load_data(DataConfig(name="cifar10", root=str(tmp_path), val_fraction=0.1, batch_size=10))
    assert (b.in_chans, b.image_size, b.num_classes) == (3, 32, 10)
    assert b.train.num_samples + b.val.num_samples == 100 and b.val.num_samples == 10
    assert b.classes == [f"name{i}" for i in range(10)]
    assert b.augment == "cifar"
    test = files["test_batch"]["data"].reshape(-1, 3, 32, 32)
    assert np.array_equal(b.test.images.numpy(), test)
    assert np.array_equal(b.test.labels.numpy(), np.arange(20) % 10)
    assert len(b.mean) == 3 and all(0.45 < m < 0.55 for m in b.mean)


def test_cifar100_archive(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar100", archive=True)
    b = load_data(DataConfig(name="cifar100", root=str(tmp_path), val_fraction=0.0, batch_size=10))
    assert b.num_classes == 100 and b.classes[3] == "fine3"
    assert b.train.num_samples == 100 and b.test.num_samples == 20


def test_cifar_in_user_data_dir(tmp_path: Path) -> None:
    write_cifar(Path(os.environ["RESNETS_DATA"]) / "cifar10", "cifar10")
    assert load_data(DataConfig(name="cifar10", batch_size=10)).test.num_samples == 20


def test_pickle_with_code_is_refused() -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        safe_unpickle(pickle.dumps({"data": Evil()}))


def test_missing_cifar_error_names_places_and_fix(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_data(DataConfig(name="cifar100", root=str(tmp_path)))
    message = str(info.value)
    assert str(tmp_path / "cifar-100-python") in message and str(tmp_path / "cifar-100-python.tar.gz") in message
    assert "download: true" in message
