"""Prediction on image files with a trained checkpoint (its metadata says everything needed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from resnets.data import preprocess
from resnets.data.images import DECODE_ERRORS, open_image
from resnets.data.paths import shown
from resnets.io.runs import open_run
from resnets.runtime import resolve_device


@dataclass
class Prediction:
    path: str
    topk: list[tuple[str, float]]  # (label, probability), most likely first


@dataclass
class Predictor:
    """A trained model with its input transform and class names."""

    model: nn.Module
    classes: list[str]
    image_size: int
    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_fraction: float
    device: torch.device
    note: str | None = None  # e.g. why the classes are numbered rather than named

    def transform(self, image: Image.Image) -> torch.Tensor:
        return preprocess(image, image_size=self.image_size, in_chans=self.in_chans, mean=self.mean,
                          std=self.std, crop_fraction=self.crop_fraction)  # (C, H, W)


def load_predictor(checkpoint: str | Path, *, device: torch.device | str = "cpu") -> Predictor:
    """Rebuild the model of ``checkpoint`` (run directory or .safetensors) from its metadata."""
    dev = resolve_device(device)
    run = open_run(checkpoint)
    model = run.load_model().to(dev).eval()
    return Predictor(model=model, classes=run.classes, image_size=run.image_size or model.default_input_size[1],
                     in_chans=run.in_chans, mean=run.mean, std=run.std, crop_fraction=run.crop_fraction, device=dev)


def load_published_predictor(name: str, *, device: torch.device | str = "cpu") -> Predictor:
    """Published weights by name (``resnet50.IMAGENET1K_V2``), with their class names and their
    own evaluation transform (resize, centre crop, mean and std)."""
    from resnets.models import create_model
    from resnets.models.labels import class_names_or_indices
    from resnets.models.pretrained import find_weights

    entry = find_weights(name)
    if entry is None:
        raise ValueError(f"{name!r} names no published weights (MODEL.TAG); `resnets weights` lists them")
    model = create_model(entry.model, weights=entry.tag)
    classes, note = class_names_or_indices(entry.labels, entry.num_classes)
    dev = torch.device(device)
    model.to(dev).eval()
    return Predictor(model=model, classes=classes, image_size=entry.crop, in_chans=3, mean=entry.mean, std=entry.std,
                     crop_fraction=entry.crop_fraction, device=dev, note=note)


def _open(path: str) -> Image.Image:
    """The upright image (EXIF orientation applied); every unreadable file (missing, truncated,
    not an image, a decompression bomb) raises FileNotFoundError or ValueError naming it."""
    try:
        return open_image(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"image {shown(path)} not found") from None
    except DECODE_ERRORS as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"cannot read image {shown(path)} ({shown(reason)}); give PNG/JPEG files") from None


def _load_batch(
    predictor: Predictor, paths: Sequence[str], on_error: Callable[[str, str], None] | None
) -> tuple[list[str], list[torch.Tensor]]:
    """Decode and transform ``paths``; unreadable images go to ``on_error`` (or raise without one)."""
    kept: list[str] = []
    tensors: list[torch.Tensor] = []
    for path in paths:
        try:
            tensors.append(predictor.transform(_open(path)))  # (C, H, W)
        except (FileNotFoundError, ValueError) as exc:
            if on_error is None:
                raise
            on_error(path, str(exc))
            continue
        kept.append(path)
    return kept, tensors


@torch.no_grad()
def predict(
    predictor: Predictor,
    paths: Sequence[str | Path],
    *,
    topk: int = 5,
    batch_size: int = 64,
    on_error: Callable[[str, str], None] | None = None,
) -> list[Prediction]:
    """Top-k labels with probabilities for each image, computed in batches.

    Without ``on_error`` an unreadable image raises; with it, the image is reported there
    and skipped, and the others are still predicted.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    k = max(1, min(topk, len(predictor.classes)))
    out: list[Prediction] = []
    names = [str(p) for p in paths]
    for i in range(0, len(names), batch_size):
        chunk, tensors = _load_batch(predictor, names[i : i + batch_size], on_error)
        if not chunk:
            continue
        x = torch.stack(tensors).to(predictor.device)  # (N, C, H, W)
        probs = predictor.model(x).float().softmax(dim=1)  # (N, K)
        values, indices = probs.topk(k, dim=1)
        for path, vals, idxs in zip(chunk, values.tolist(), indices.tolist()):
            out.append(Prediction(path=path, topk=[(predictor.classes[j], v) for v, j in zip(vals, idxs)]))
    return out
