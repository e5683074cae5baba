"""Counting and describing models: parameters, FLOPs, the layer table.

FLOPs are counted with ``torch.utils.flop_counter`` on the meta device (no
memory, no compute) and reported as multiply-adds (MACs), the unit of the
papers and of torchvision's "GFLOPS" figures. The figures of every registered
model at its default options are also stored in ``figures.json`` (written by
``python -m resnets.models.inspect``, checked against a fresh count in the tests),
so that listing the models does not build and trace 38 networks each time.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from resnets.models.blocks import count_weighted_layers, is_unit
from resnets.models.registry import create_model
from resnets.models.resnet import ResNet


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    """Multiply-adds for one image of ``input_size`` (C, H, W); the model is not changed."""
    was_training = model.training
    model.eval()
    x = torch.zeros((1,) + tuple(input_size), device=next(model.parameters()).device)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    model.train(was_training)
    return counter.get_total_flops() // 2


FIGURES_FILE = Path(__file__).with_name("figures.json")


@dataclass(frozen=True)
class Figures:
    """A model at its default options: parameter count, MACs per image at ``input_size`` (C, H, W)."""

    params: int
    macs: int
    input_size: tuple[int, int, int]


def compute_figures(name: str) -> Figures:
    """Count a registered model's parameters and MACs at its default options (on the meta device)."""
    with torch.device("meta"):
        model = create_model(name)
    size = tuple(model.default_input_size)
    return Figures(params=count_parameters(model), macs=count_macs(model, size), input_size=size)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=1)
def _stored() -> dict[str, Figures]:
    try:
        raw = json.loads(FIGURES_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return {n: Figures(params=int(f["params"]), macs=int(f["macs"]), input_size=tuple(f["input_size"]))
            for n, f in raw.items()}


def figures_of(name: str) -> Figures:
    """Stored figures of a registered model, counted on the spot for a model the table lacks."""
    return _stored().get(name) or compute_figures(name)


def write_figures(path: Path = FIGURES_FILE) -> dict[str, Figures]:
    """Count every registered model and store the table (run after adding or changing a model)."""
    from resnets.models.registry import list_models

    table = {name: compute_figures(name) for name in list_models()}
    rows = [f'  "{n}": {{"params": {f.params}, "macs": {f.macs}, "input_size": {list(f.input_size)}}}'
            for n, f in table.items()]
    path.write_text("{\n" + ",\n".join(rows) + "\n}\n")
    _stored.cache_clear()
    return table


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    units: int
    weighted: int
    out_shape: tuple[int, ...]
    params: int


def layer_table(model: ResNet, *, input_size: tuple[int, int, int] | None = None) -> list[LayerRow]:
    """One row for the stem, each stage and the head, with output shapes for one image."""
    size = input_size or model.default_input_size
    shapes: dict[str, tuple[int, ...]] = {}
    parts: list[tuple[str, nn.Module]] = [("stem", model.maxpool)] + [(n, getattr(model, n)) for n in model.stage_names]
    parts.append(("head", model.fc))
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: shapes.__setitem__(n, tuple(out.shape))) for n, m in parts]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros((1,) + tuple(size), device=next(model.parameters()).device))
    model.train(was_training)
    for h in hooks:
        h.remove()
    stem_params = sum(count_parameters(m) for m in (model.conv1, model.bn1))
    rows = [LayerRow("stem", type(model.conv1).__name__ + f" {model.conv1.kernel_size[0]}x{model.conv1.kernel_size[1]}",
                     0, 1, shapes["stem"], stem_params)]
    for name in model.stage_names:
        stage = getattr(model, name)
        units = [u for u in stage if is_unit(u)]
        kind = type(units[0]).__name__ if units else "-"
        rows.append(LayerRow(name, kind, len(units), sum(count_weighted_layers(u) for u in units),
                             shapes[name], count_parameters(stage)))
    head_params = count_parameters(model.fc) + count_parameters(model.final_norm)
    rows.append(LayerRow("head", "avgpool + fc", 0, 1 if isinstance(model.fc, nn.Linear) else 0,
                         shapes["head"], head_params))
    return rows


if __name__ == "__main__":
    print(f"wrote {len(write_figures())} models to {FIGURES_FILE}")
