"""``load_data``: a named dataset -> its bundle (in memory, or streamed from an image folder)."""

from __future__ import annotations

from pathlib import Path

import torch

from resnets.data.bundle import DataBundle
from resnets.data.config import DataConfig
from resnets.data.folder import bundle_from_folder
from resnets.data.memory import bundle_from_arrays
from resnets.data.paths import shown
from resnets.data.sources import ArrayData, FolderData, get_source
from resnets.data.sources.base import check_labels


def load_data(
    cfg: DataConfig,
    device: torch.device | str = "cpu",
    rank: int = 0,
    world_size: int = 1,
) -> DataBundle:
    """Load ``cfg.name`` and build its loaders for this ``rank`` of ``world_size``."""
    device = torch.device(device)
    data = get_source(cfg.name).load(cfg)
    if isinstance(data, ArrayData):
        check_labels(data, name=cfg.name)  # once, here, for every source: a bad label fails now, not at a step
    if isinstance(data, FolderData):
        bundle = bundle_from_folder(cfg, data, device=device, rank=rank, world_size=world_size)
    else:
        bundle = bundle_from_arrays(cfg, data, device=device, rank=rank, world_size=world_size)
    bundle.source = _source(data)
    return bundle


def _source(data: ArrayData | FolderData) -> str:
    """Where the images came from, for messages: the folder of the files read, else "built in"."""
    if isinstance(data, FolderData):
        return shown(data.root)
    files = [Path(name) for name, _ in data.origin.get("train", [])]
    folders = {f.parent for f in files if f.parent != Path(".")}
    return shown(folders.pop()) if len(folders) == 1 else "built in"

