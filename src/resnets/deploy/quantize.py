"""int8 post-training quantization: calibrate, measure top-1 before and after, write the model.

The route is OpenVINO with NNCF (chosen by measurement on an AMX/VNNI Xeon: its int8 ResNets
ran about twice its bf16 and several times onnxruntime's static int8; see benchmarks/RESULTS.md);
onnxruntime's static quantization is the other route. Both quantize the BN-folded model with
per-channel 8-bit weights. The accuracy check runs on a held-out split the caller gives.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn

from resnets.deploy.inference import InferenceModel, inference_model
from resnets.io.atomic import write_files_atomically

QUANTIZE_BACKENDS: tuple[str, ...] = ("openvino", "onnxruntime")
SUFFIXES: dict[str, str] = {"openvino": ".xml", "onnxruntime": ".onnx"}
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
MAX_DROP_POINTS = 0.5  # default refusal threshold: top-1 may fall by at most this many points


@dataclass
class Accuracy:
    before: float  # top-1 of the fp32 torch model, in [0, 1]
    after: float  # top-1 of the int8 model
    agreement: float  # share of images where both predict the same class
    samples: int

    @property
    def drop_points(self) -> float:
        return 100 * (self.before - self.after)

    @property
    def change_points(self) -> float:
        """Top-1 after minus before, in points (never -0.0)."""
        return 100 * (self.after - self.before) + 0.0


def calibration_batches(images: Iterable[Tensor], *, count: int, batch: int = 32) -> list[Tensor]:
    """The first ``count`` images of ``images`` (each (C, H, W) or a batch (N, C, H, W)) in batches."""
    if count < 1:
        raise ValueError(f"--calibrate must be >= 1 image, got {count}")
    kept: list[Tensor] = []
    total = 0
    for item in images:
        chunk = item.unsqueeze(0) if item.dim() == 3 else item
        chunk = chunk[: count - total].float().cpu()
        kept.append(chunk)
        total += len(chunk)
        if total >= count:
            break
    if total == 0:
        raise ValueError("no calibration images were found")
    return list(torch.cat(kept).split(batch))


def folder_images(folder: str | Path, transform: Callable[[Image.Image], Tensor]) -> Iterable[Tensor]:
    """The image files under ``folder`` (sorted, recursive), each through ``transform``; unreadable ones skipped."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"calibration folder {root} not found; give a folder of PNG/JPEG images")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"no images (.png, .jpg, ...) under {root}; give a folder of PNG/JPEG images")
    for path in paths:
        try:
            with Image.open(path) as im:
                image = im.convert("RGB") if im.mode not in ("L", "RGB") else im.copy()
        except OSError:
            continue
        yield transform(image)


@torch.no_grad()
def top1(fn: Callable[[Tensor], Tensor], batches: Iterable[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """(predicted classes, labels) of ``fn`` over labelled batches, on the CPU."""
    preds, labels = [], []
    for x, y in batches:
        preds.append(fn(x.float().cpu()).argmax(dim=1))
        labels.append(y.cpu())
    if not preds:
        raise ValueError("the evaluation split is empty")
    return torch.cat(preds), torch.cat(labels)


def quantize(
    model: nn.Module, *, backend: str, calibration: Sequence[Tensor], input_size: Sequence[int],
    held_out: Callable[[], Iterable[tuple[Tensor, Tensor]]],
) -> tuple[InferenceModel, Accuracy]:
    """The int8 model of ``model`` and top-1 before/after on ``held_out()`` (a fresh iterable per call)."""
    if backend not in QUANTIZE_BACKENDS:
        raise ValueError(f"unknown int8 backend {backend!r}; choose one of {', '.join(QUANTIZE_BACKENDS)}")
    reference = copy.deepcopy(model).float().cpu().eval()
    int8 = inference_model(reference, device="cpu", backend=backend, precision="int8", calibration=calibration,
                           input_size=input_size)
    before, labels = top1(reference, held_out())
    after, labels_after = top1(int8, held_out())
    if not torch.equal(labels, labels_after):
        raise ValueError("the held-out split changed between two passes; it must be read in a fixed order")
    n = len(labels)
    return int8, Accuracy(before=float((before == labels).float().mean()), after=float((after == labels).float().mean()),
                          agreement=float((before == after).float().mean()), samples=n)


def save_int8(int8: InferenceModel, path: str | Path) -> list[Path]:
    """Write the int8 model: OpenVINO IR (``.xml`` + ``.bin``) or an ONNX file; all files or none
    (:func:`resnets.io.atomic.write_files_atomically`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".int8-", dir=path.parent) as staging:
        if int8.backend == "openvino":
            from resnets.deploy.backends.openvino_model import save_ir

            save_ir(int8.model, str(Path(staging) / path.with_suffix(".xml").name))  # type: ignore[arg-type]
            payloads = {f.name: f.read_bytes() for f in sorted(Path(staging).iterdir())}
        else:
            payloads = {path.with_suffix(".onnx").name: Path(int8.model.path).read_bytes()}  # type: ignore[union-attr,arg-type]
    write_files_atomically(path.parent, payloads)
    return [path.parent / name for name in payloads]


__all__ = ["Accuracy", "MAX_DROP_POINTS", "QUANTIZE_BACKENDS", "calibration_batches", "folder_images",
           "quantize", "save_int8", "top1"]
