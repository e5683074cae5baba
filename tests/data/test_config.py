from __future__ import annotations

import pytest

from resnets.data import DataConfig, list_datasets, load_data


def test_unknown_key_is_an_error_naming_known_keys() -> None:
    with pytest.raises(ValueError, match="unknown data config key.*batch_sise.*known keys.*batch_size"):
        DataConfig.from_dict({"name": "digits", "batch_sise": 3})


def test_from_dict_builds_typed_config() -> None:
    cfg = DataConfig.from_dict({"name": "synthetic", "synthetic_shape": [1, 4, 4], "batch_size": 7})
    assert cfg.synthetic_shape == (1, 4, 4)
    assert cfg.batch_size == 7


@pytest.mark.parametrize(
    "bad",
    [{"augment": "cifar10"}, {"device_resident": "maybe"}, {"val_fraction": 1.0}, {"batch_size": 0}],
)
def test_bad_values_rejected(bad: dict) -> None:
    with pytest.raises(ValueError, match="DataConfig"):
        DataConfig(**bad)


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'cifar11'.*digits"):
        load_data(DataConfig(name="cifar11"))


def test_all_named_sources_registered() -> None:
    assert {"digits", "synthetic"} <= set(list_datasets())
