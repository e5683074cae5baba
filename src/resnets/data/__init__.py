"""Datasets, augmentation and loaders.

>>> from resnets.data import DataConfig, load_data
>>> bundle = load_data(DataConfig(name="digits"))
>>> for x, y in bundle.train.epoch(0): ...   # x (N, C, H, W) float32 normalised, y (N,) int64
"""

from resnets.data.bundle import DataBundle, Loader
from resnets.data.config import DataConfig
from resnets.data.errors import DatasetNotFoundError
from resnets.data.load import load_data
from resnets.data.sources import list_datasets
from resnets.data.transforms import preprocess
from resnets.io.download import ChecksumError

__all__ = [
    "ChecksumError",
    "DataBundle",
    "DataConfig",
    "DatasetNotFoundError",
    "Loader",
    "list_datasets",
    "load_data",
    "preprocess",
]
