"""Fine-tuning: load a project checkpoint or a torchvision state dict, freeze early stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from resnets.models.weights import load_pretrained, read_state_dict
from resnets.train.checkpoint import WEIGHTS_SUFFIX, resolve_checkpoint


def read_source(source: str | Path) -> dict:
    """The state dict of a run directory (best, else last), a .safetensors file or a torch file."""
    path = Path(source)
    if path.is_dir() or path.name.endswith(WEIGHTS_SUFFIX):
        path = resolve_checkpoint(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"finetune.source {source} not found; give a run directory, a .safetensors checkpoint "
            "or a torchvision state-dict file (.pth)"
        )
    return read_state_dict(path)


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
    state = read_source(source)
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
    names: list[str] = list(model.stage_names)
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
