"""Checkpoints that can never run code and never end up half-written.

A checkpoint ``<dir>/<tag>`` is two files:

* ``<tag>.safetensors``: the unwrapped module's ``state_dict`` plus string metadata (model
  name and options, classes, normalisation, image size, the resolved config, the step);
  enough for ``resnets predict`` and ``resnets eval`` on their own.
* ``<tag>.state.pt``: optimizer state, step, epoch, RNG states and loop counters, read
  with ``torch.load(weights_only=True)`` (tensors, numbers, strings, lists, dicts).

Both are first written in full to temporary files in the same directory (fsync'ed), then
moved into place with ``os.replace``: an error while writing leaves the previous checkpoint
as it was. Both carry the step, and :func:`load_checkpoint` refuses a mismatched pair, except
when a process was killed between the two moves: then the other half, staged in full, is still
next to them and the move is completed (rolled forward). A file that cannot be read (truncated,
not a checkpoint, a pickle that needs code) is refused with a ``ValueError`` that names it.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn

from resnets.io.atomic import storage_error, write_files_atomically

FORMAT = "resnets-checkpoint/1"
WEIGHTS_SUFFIX = ".safetensors"
STATE_SUFFIX = ".state.pt"


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    weights: dict[str, torch.Tensor]
    metadata: dict[str, str]
    state: dict[str, Any] | None  # None for weights-only checkpoints (e.g. ``best``)

    @property
    def step(self) -> int:
        return int(self.metadata.get("step", "0"))


def weights_bytes(module: nn.Module, metadata: dict[str, str]) -> bytes:
    """The module's state dict as safetensors bytes (contiguous CPU copies)."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    return safetensors.torch.save(tensors, metadata=metadata)


def state_bytes(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def save_checkpoint(
    directory: str | Path,
    tag: str,
    *,
    module: nn.Module,
    metadata: dict[str, str],
    state: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint ``tag`` (weights, and the training state when given); returns the weights path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    step = str(state["step"]) if state is not None else metadata.get("step", "0")
    meta = {**metadata, "format": FORMAT, "step": step}
    payloads = {f"{tag}{WEIGHTS_SUFFIX}": weights_bytes(module, meta)}
    if state is not None:
        payloads[f"{tag}{STATE_SUFFIX}"] = state_bytes(state)
    for name in payloads:  # staged files left by a killed writer (the run directory is locked: ours)
        for orphan in directory.glob(f".{name}.*.tmp"):
            orphan.unlink(missing_ok=True)
    try:
        write_files_atomically(directory, payloads)
    except OSError as exc:
        raise storage_error(exc, what=f"checkpoint {tag!r}", directory=directory) from exc
    return directory / f"{tag}{WEIGHTS_SUFFIX}"


_TORCH_FILE = ("a PyTorch file (torch.save or pickle, e.g. torchvision .pth weights)",
               "fine-tune from its weights with finetune.source=FILE, or export them with "
               "`resnets export --model NAME --weights FILE`")
_ONNX_FILE = ("an ONNX export", "run it with onnxruntime, or give the run directory it was exported from")


def _foreign(path: Path) -> ValueError | None:
    """A clear refusal when ``path`` is another kind of file than a safetensors checkpoint:
    known by its suffix (.onnx) or its first bytes (a zip or a pickle: ``torch.save``)."""
    if path.name.endswith(WEIGHTS_SUFFIX):
        return None  # ours by name: damaged contents are reported as such
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return None
    if path.suffix.lower() == ".onnx":
        what, fix = _ONNX_FILE
    elif head.startswith((b"PK\x03\x04", b"\x80")):
        what, fix = _TORCH_FILE
    else:
        return None
    return ValueError(f"{path} is {what}, not a checkpoint written by `resnets train` (a run directory or its "
                      f".safetensors files); {fix.replace('FILE', str(path))}")


def _unreadable(path: Path, exc: BaseException) -> ValueError:
    if isinstance(exc, pickle.UnpicklingError):
        reason = "it holds objects that need code to load, which is refused"
    else:
        lines = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {lines[0][:160] if lines else ''}"
    return ValueError(
        f"checkpoint {path} cannot be read ({reason}); it is truncated, damaged or not written by "
        "`resnets train`: use another checkpoint of the run (best.safetensors / last.safetensors)"
    )


def read_metadata(path: str | Path) -> dict[str, str]:
    try:
        with safetensors.safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types
        raise _foreign(Path(path)) or _unreadable(Path(path), exc) from None


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated (EOFError, RuntimeError) or needs code (UnpicklingError)
        raise _unreadable(path, exc) from None
    if not isinstance(state, dict) or "step" not in state:
        raise _unreadable(path, TypeError("not a training state (a dict with a 'step')"))
    return state


def _roll_forward(state_path: Path, step: str | None) -> dict[str, Any] | None:
    """The training state of ``step`` staged next to ``state_path`` by a writer killed before moving
    it into place: moved now (completing that write), or None when there is none."""
    for staged in sorted(state_path.parent.glob(f".{state_path.name}.*.tmp")):
        try:
            state = _read_state(staged)
        except ValueError:
            continue  # a partly written file
        if str(state.get("step")) == step:
            try:
                os.replace(staged, state_path)
            except FileNotFoundError:
                pass  # another process completed it first
            return state
    return None


def resolve_checkpoint(path: str | Path, *, prefer: tuple[str, ...] = ("best", "last")) -> Path:
    """A checkpoint's weights file from a run directory, a tag path or the file itself."""
    path = Path(path)
    if path.is_dir():
        for tag in prefer:
            candidate = path / f"{tag}{WEIGHTS_SUFFIX}"
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            f"no checkpoint ({', '.join(t + WEIGHTS_SUFFIX for t in prefer)}) in {path}; "
            "give a run directory written by `resnets train` or a .safetensors file"
        )
    if path.name.endswith(STATE_SUFFIX):
        path = path.with_name(path.name[: -len(STATE_SUFFIX)] + WEIGHTS_SUFFIX)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; give a run directory or a .safetensors file")
    return path


def load_checkpoint(path: str | Path, *, with_state: bool = True) -> Checkpoint:
    """Load weights (+ metadata) and, when present and asked for, the training state."""
    weights_path = resolve_checkpoint(path)
    metadata = read_metadata(weights_path)
    try:
        weights = safetensors.torch.load_file(str(weights_path))
    except Exception as exc:
        raise _unreadable(weights_path, exc) from None
    state = None
    state_path = weights_path.with_name(weights_path.name[: -len(WEIGHTS_SUFFIX)] + STATE_SUFFIX)
    if with_state:
        state = _read_state(state_path) if state_path.is_file() else None
        if state is None or str(state.get("step")) != metadata.get("step"):
            state = _roll_forward(state_path, metadata.get("step")) or state
        if state is not None and str(state.get("step")) != metadata.get("step"):
            raise ValueError(
                f"{state_path} (step {state.get('step')}) does not match {weights_path} "
                f"(step {metadata.get('step')}); the pair was torn: resume from another checkpoint"
            )
    return Checkpoint(weights=weights, metadata=metadata, state=state)


def apply_weights(model: nn.Module, ckpt: Checkpoint, *, path: str | Path) -> None:
    """Load ``ckpt``'s weights into ``model``; weights of another network or class count are
    refused with a ValueError that says what the checkpoint holds (nothing is loaded then)."""
    own = model.state_dict()
    missing = [k for k in own if k not in ckpt.weights]
    unexpected = [k for k in ckpt.weights if k not in own]
    shapes = [k for k in own if k in ckpt.weights and own[k].shape != ckpt.weights[k].shape]
    if missing or unexpected or shapes:
        head = ckpt.weights.get("fc.weight")  # (classes, features): what the weights hold, whatever the metadata says
        held = int(head.shape[0]) if head is not None else ckpt.metadata.get("num_classes", "?")
        mine = getattr(model, "num_classes", "?")
        what = f"it holds {ckpt.metadata.get('model', 'an unnamed model')} with {held} classes, " + (
            f"this model has {mine}" if str(held) != str(mine) else "this model is another network")
        if shapes:
            k = shapes[0]
            detail = f"{k} is {tuple(ckpt.weights[k].shape)} there, {tuple(own[k].shape)} here"
        else:
            detail = f"{len(missing)} tensors missing, {len(unexpected)} unexpected, e.g. {(missing or unexpected)[0]}"
        raise ValueError(
            f"checkpoint {path} does not fit this model: {what} ({detail}); use the recipe that wrote it "
            "(its run directory's config.yaml), or start a new run from it with finetune.source=..."
        )
    model.load_state_dict(ckpt.weights)


def json_meta(**values: Any) -> dict[str, str]:
    """Metadata values as strings (JSON for anything that is not already a string)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
