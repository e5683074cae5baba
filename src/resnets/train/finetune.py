"""Fine-tuning: start from a project checkpoint, published weights by name, or a foreign
checkpoint (converted on the fly); freeze early stages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from torch import Tensor, nn

from resnets.io.checkpoint import WEIGHTS_SUFFIX, read_metadata, resolve_checkpoint
from resnets.models.blocks import ZeroPadShortcut
from resnets.models.foreign import convert_state, detect_format
from resnets.models.weights import load_pretrained, read_state_dict


def _published(model: nn.Module, name: str) -> Path | None:
    """The file of published weights ``name`` (``resnet50.IMAGENET1K_V2``), fetched when needed."""
    from resnets.models.hub import fetch
    from resnets.models.pretrained import find_weights

    entry = find_weights(name)
    if entry is None:
        return None
    v1 = any(getattr(u, "conv1", None) is not None and u.conv1.stride == (2, 2) and u.conv1.kernel_size == (1, 1)
             for u in getattr(model, "units", lambda: [])())
    if v1 and entry.variant != "v1":
        raise ValueError(f"finetune.source {name} was trained with variant={entry.variant!r}; set "
                         f"model.variant={entry.variant}")
    return fetch(entry.url)


def read_source(source: str | Path, model: nn.Module | None = None) -> dict[str, Tensor]:
    """The state dict of a run directory (best, else last), a .safetensors file, a torch file
    (foreign CIFAR formats renamed to our keys) or published weights by name."""
    path = Path(source)
    if not path.exists() and model is not None:
        path = _published(model, str(source)) or path
    if path.is_dir() or path.name.endswith(WEIGHTS_SUFFIX):
        path = resolve_checkpoint(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"finetune.source {source} not found; give a run directory, a .safetensors checkpoint, "
            "a torchvision/akamaster/chenyaofo state-dict file or published weights by name (`resnets weights`)"
        )
    state = read_state_dict(path)
    fmt = detect_format(state)
    if fmt is None or all(fmt.rename(k) == k for k in state):
        if model is not None and path.name.endswith(WEIGHTS_SUFFIX):
            options = json.loads(read_metadata(path).get("model_options", "{}"))
            if options.get("shortcut") in (None, "A"):  # trained or converted with zero-padding shortcuts
                _check_placement(model, options.get("pad_placement", "after"), source)
        return state
    converted = convert_state(state, from_format=fmt.name)
    if converted.options.get("shortcut") == "A" and model is not None:
        _check_placement(model, str(converted.options["pad_placement"]), source, fmt=fmt.name)
    return converted.state


def _check_placement(model: nn.Module, wanted: str, source: str | Path, *, fmt: str = "") -> None:
    """Refuse weights trained with the other option-A placement (same shapes, other function)."""
    placements = {m.placement for m in model.modules() if isinstance(m, ZeroPadShortcut)}
    if placements and placements != {wanted}:
        what = f"a {fmt} checkpoint" if fmt else "a checkpoint"
        raise ValueError(
            f"finetune.source {source} is {what} whose option-A shortcuts put the zero channels {wanted!r}, "
            f"this model puts them {sorted(placements)[0]!r}; set model.pad_placement={wanted}"
        )
    if not placements and fmt:
        raise ValueError(f"finetune.source {source} is a {fmt} checkpoint with option-A shortcuts; set "
                         f"model.shortcut=A model.pad_placement={wanted}")


@dataclass
class FinetuneReport:
    """What fine-tuning did to each tensor: loaded from the source, newly initialised (a head
    for another class count), and which top-level modules are frozen."""

    source: str
    loaded: list[str]
    initialised: list[str]
    source_classes: int | None = None
    frozen: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        def modules(keys: list[str]) -> str:
            return ", ".join(dict.fromkeys(k.split(".")[0] for k in keys)) or "none"

        out = [f"fine-tuning from {self.source}:",
               f"  loaded: {len(self.loaded)} tensors ({modules(self.loaded)})"]
        if self.initialised:
            why = f" (the source has {self.source_classes} classes)" if self.source_classes is not None else ""
            out.append(f"  newly initialised: {', '.join(self.initialised)}{why}")
        out.append(f"  frozen: {', '.join(self.frozen) if self.frozen else 'nothing (finetune.freeze_stages=-1)'}")
        return out


def load_finetune_source(model: nn.Module, source: str | Path) -> FinetuneReport:
    """Load ``source`` into ``model``; a head of another class count is left as initialised."""
    state = read_source(source, model)
    head = state.get("fc.weight")
    own = model.state_dict().get("fc.weight")
    drop_head = head is not None and own is not None and head.shape != own.shape
    result = load_pretrained(model, state, drop_head=drop_head, strict=True)
    fresh = [k for k in model.state_dict() if k not in state or (drop_head and k.startswith("fc."))]
    fresh = sorted(set(fresh) | set(result["missing"]), key=list(model.state_dict()).index)
    return FinetuneReport(
        source=str(source), loaded=[k for k in model.state_dict() if k not in fresh], initialised=fresh,
        source_classes=int(head.shape[0]) if drop_head and head is not None else None,
    )


def freeze(model: nn.Module, stages: int) -> list[nn.Module]:
    """Freeze the stem (``stages >= 0``) and the first ``stages`` stages; returns the frozen modules.

    The stem is every child registered before the first stage. Frozen parameters stop
    requiring gradients; the caller keeps the returned modules in eval mode (BN statistics).
    """
    if stages < 0:
        return []
    names: list[str] = list(cast(list[str], model.stage_names))
    if stages > len(names):
        raise ValueError(f"finetune.freeze_stages={stages} but the model has {len(names)} stages ({names})")
    frozen: list[nn.Module] = []
    for name, child in model.named_children():
        if name == names[0]:
            break
        frozen.append(child)
    frozen.extend(getattr(model, n) for n in names[:stages])
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    return frozen
