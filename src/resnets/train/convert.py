"""Foreign checkpoints made into ours: one file that ``eval``, ``predict``, ``export`` and
``finetune.source`` all read, with what it was converted from recorded in its metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from resnets.io.checkpoint import WEIGHTS_SUFFIX, json_meta, read_metadata, save_checkpoint
from resnets.io.download import file_checksum
from resnets.models import create_model, read_state_dict
from resnets.models.foreign import Converted, Normalisation, convert_state
from resnets.models.labels import class_names_or_indices
from resnets.models.pretrained import list_weights
from resnets.train.config import ModelConfig
from resnets.train.configio import config_from_mapping, dump_config
from resnets.train.network import options_json

# the dataset `resnets eval` uses for a label set
_DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet-1k": "imagefolder"}
# formats whose conversion is tested against a re-written definition of the source network
VERIFIED = ("torchvision", "akamaster", "chenyaofo")


@dataclass
class ConvertResult:
    path: Path
    converted: Converted
    normalisation: Normalisation
    notes: list[str]


def _normalisation(src: Path, conv: Converted, notes: list[str]) -> Normalisation:
    """The source's evaluation transform: a published file's own, else the format's for its class count."""
    for entry in list_weights():
        if entry.filename == src.name and entry.model == conv.model:
            return Normalisation(entry.labels, entry.mean, entry.std, entry.crop, entry.crop_fraction)
    found = conv.normalisation
    if found is not None:
        return found
    fallback = next(iter(conv.format.normalisation.values()))
    notes.append(f"{conv.options['num_classes']} classes is not a dataset the {conv.format.name} code trains on; "
                 f"classes are numbered and inputs normalised as for {fallback.labels}")
    return Normalisation("", fallback.mean, fallback.std, fallback.image_size, fallback.crop_fraction)


def convert_checkpoint(src: str | Path, dst: str | Path, *, from_format: str | None = None) -> ConvertResult:
    """Convert ``src`` (a foreign state dict) into our checkpoint ``dst`` (``.safetensors``)."""
    src, dst = Path(src), Path(dst)
    if not dst.name.endswith(WEIGHTS_SUFFIX) or dst.name == WEIGHTS_SUFFIX:
        raise ValueError(f"the converted file {dst} must end in {WEIGHTS_SUFFIX}, e.g. resnet20.safetensors")
    if src.suffix == WEIGHTS_SUFFIX and src.is_file() and "model" in read_metadata(src):
        raise ValueError(f"{src} is already one of our checkpoints (it names its model); use it as it is")
    state = read_state_dict(src)
    conv = convert_state(state, from_format=from_format)
    model = create_model(conv.model, **conv.options)  # type: ignore[arg-type,call-overload]
    model.load_state_dict(conv.state, strict=True)
    notes: list[str] = []
    norm = _normalisation(src, conv, notes)
    num_classes = int(conv.options["num_classes"])  # type: ignore[arg-type,call-overload]
    classes, why = class_names_or_indices(norm.labels, num_classes) if norm.labels else (
        [str(i) for i in range(num_classes)], None)
    if why:
        notes.append(why)
    m = ModelConfig(name=conv.model, **{k: v for k, v in conv.options.items()})  # type: ignore[arg-type]
    cfg = config_from_mapping({
        "model": {"name": conv.model, **conv.options},
        "data": {"name": _DATASETS.get(norm.labels, "imagefolder")},
        "train": {"epochs": 1},
    })
    metadata = json_meta(
        model=conv.model, model_options=options_json(m), num_classes=num_classes, in_chans=int(model.in_chans),
        classes=classes, mean=list(norm.mean), std=list(norm.std), image_size=norm.image_size,
        crop_fraction=norm.crop_fraction, config=dump_config(cfg),
        converted_from={"format": conv.format.name, "file": src.name, "sha256": file_checksum(src, algorithm="sha256"),
                        "verified_format": conv.format.name in VERIFIED},
    )
    path = save_checkpoint(dst.parent, dst.name[: -len(WEIGHTS_SUFFIX)], module=model, metadata=metadata)
    return ConvertResult(path=path, converted=conv, normalisation=norm, notes=notes)


def converted_from(metadata: dict[str, str]) -> dict[str, object] | None:
    """What a converted checkpoint was made from (None for checkpoints written by training)."""
    raw = metadata.get("converted_from")
    return json.loads(raw) if raw else None
