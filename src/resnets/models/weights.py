"""Reading, adapting and writing weights: torchvision checkpoints, safetensors.

Nothing here runs code from a file: ``.pt``/``.pth`` files are read with
``torch.load(weights_only=True)`` and safetensors holds tensors only.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")
_PREFIXES = ("module.", "_orig_mod.")


def _strip_prefixes(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Tensors from a ``.safetensors`` file or a ``torch.save``'d state dict (never executing code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}; check the path")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return _strip_prefixes(load_file(str(path)))
        except Exception as exc:  # safetensors raises its own error types
            raise ValueError(f"{path} is not a readable safetensors file ({exc}); it may be truncated") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # One line, and not torch's advice to retry with weights_only=False (that would run the code).
        reason = ("it holds objects that need code to load" if isinstance(exc, pickle.UnpicklingError)
                  else f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:160]}")
        raise ValueError(
            f"{path} could not be read as a weights-only checkpoint ({reason}). "
            "Files that need code to load are refused; re-save the tensors with torch.save(model.state_dict(), path) "
            "or as .safetensors"
        ) from exc
    while isinstance(obj, dict) and len(obj) > 0 and not all(isinstance(v, Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return _strip_prefixes(obj)


def adapt_input_conv(weight: Tensor, in_chans: int) -> Tensor:
    """Adapt a stem conv trained on 3-channel input to ``in_chans`` channels.

    1 channel: the sum over RGB (a gray image gives the same response as its RGB copy).
    Otherwise: RGB repeated cyclically and rescaled by 3 / in_chans.
    """
    out_ch, c, kh, kw = weight.shape
    if c == in_chans:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_chans // c)
    w = weight.repeat(1, reps, 1, 1)[:, :in_chans]  # (O, in_chans, kh, kw)
    return w * (c / in_chans)


def _head_keys(model: nn.Module) -> set[str]:
    return {k for k in model.state_dict() if k.startswith("fc.")}


def load_pretrained(
    model: nn.Module,
    source: str | os.PathLike[str] | Mapping[str, Tensor],
    *,
    drop_head: bool = False,
    strict: bool = True,
) -> dict[str, list[str]]:
    """Load weights into ``model``; returns the missing and unexpected keys.

    The stem conv is adapted when the file was trained with another channel count.
    ``drop_head=True`` leaves the classifier as initialised (fine-tuning to new classes);
    otherwise a head of another shape is an error that says to use ``drop_head``.
    """
    state = read_state_dict(source) if not isinstance(source, Mapping) else _strip_prefixes(source)
    own = model.state_dict()
    if "conv1.weight" in state and "conv1.weight" in own:
        state["conv1.weight"] = adapt_input_conv(state["conv1.weight"], own["conv1.weight"].shape[1])
    head = _head_keys(model)
    if drop_head:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    else:
        for key in head & set(state):
            if state[key].shape != own[key].shape:
                raise ValueError(
                    f"the weights' head {key} has shape {tuple(state[key].shape)} but the model's is "
                    f"{tuple(own[key].shape)}; pass drop_head=True (fine-tuning) to keep a new head"
                )
    mismatched = [k for k in state if k in own and state[k].shape != own[k].shape]
    if mismatched:
        k = mismatched[0]
        raise ValueError(
            f"the weights do not fit this model: {k} is {tuple(state[k].shape)} in the file but "
            f"{tuple(own[k].shape)} in the model ({len(mismatched)} such tensors); is it the same architecture?"
        )
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not (drop_head and k in head)]
    unexpected = list(result.unexpected_keys)
    if strict and (missing or unexpected):
        raise ValueError(
            "the weights do not match this model: "
            f"missing {missing[:5]}{' …' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{' …' if len(unexpected) > 5 else ''}; "
            "check the model name, or pass strict=False to load what matches"
        )
    return {"missing": missing, "unexpected": unexpected}


def save_safetensors(
    state_dict: Mapping[str, Tensor], path: str | os.PathLike[str], *, metadata: dict[str, str] | None = None
) -> None:
    """Write tensors atomically (:func:`resnets.io.atomic.write_atomically`): a crash mid-write never
    spoils an existing file."""
    from safetensors.torch import save

    from resnets.io.atomic import write_atomically

    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    write_atomically(Path(path), save(tensors, metadata=metadata))
