"""The identity study: a residual block falls back to the identity.

1. Zeroing the last layer of a residual branch (``unit.zero_init_last()``) makes its unit
   the identity (or its shortcut, where the shape changes), exactly to float precision.
2. Adding k zero-initialised residual units to a trained network leaves its outputs and
   accuracy unchanged; inserting k freshly initialised plain units does not.
3. The learned residual branches are small against the identity path: per unit, the ratio
   of the branch output's norm to the shortcut's, and the standard deviation of every 3x3
   layer's response (after BN, before the addition and ReLU), as in the paper's Figure 7.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from resnets.models import BasicBlock, ResNet
from resnets.models.blocks import is_unit
from resnets.studies.gradients import fixed_batch
from resnets.studies.nets import NetSpec
from resnets.studies.pool import Result
from resnets.studies.recipe import Recipe
from resnets.studies.trainer import train_model

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _unit_inputs(model: nn.Module, x: Tensor) -> list[tuple[nn.Module, Tensor]]:
    """Every unit with the input it receives when ``model`` runs on x."""
    pairs: list[tuple[nn.Module, Tensor]] = []
    units = [m for m in model.modules() if is_unit(m)]
    hooks = [u.register_forward_hook(lambda m, inp, _out: pairs.append((m, inp[0].detach()))) for u in units]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return pairs


def zeroed_branch_error(model: nn.Module, x: Tensor) -> list[float]:
    """Per residual unit: max |unit(h) - shortcut(h)| after zeroing its branch, on its real input h."""
    net = copy.deepcopy(model).eval()
    errors = []
    with torch.no_grad():
        for unit, h in _unit_inputs(net, x):
            unit.zero_init_last()
            shortcut = unit.downsample(h) if unit.downsample is not None else h
            errors.append(float((unit(h) - shortcut).abs().max()))
    return errors


def new_unit(width: int, *, residual: bool, device: torch.device) -> BasicBlock:
    """A width-preserving unit initialised as the model's (He normal convs, BN 1/0); a residual
    one has its branch zeroed."""
    unit = BasicBlock(width, width, residual=residual)
    for m in unit.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    if residual:
        unit.zero_init_last()
    return unit.to(device)


def insert_units(model: ResNet, k: int, *, residual: bool) -> ResNet:
    """A copy of ``model`` with k new units appended, round-robin, to the ends of its stages."""
    net = copy.deepcopy(model)
    device = next(net.parameters()).device
    added: dict[str, list[nn.Module]] = {name: [] for name in net.stage_names}
    for i in range(k):
        name = net.stage_names[i % len(net.stage_names)]
        width = getattr(net, name)[-1].bn2.num_features
        added[name].append(new_unit(width, residual=residual, device=device))
    for name, units in added.items():
        setattr(net, name, nn.Sequential(*getattr(net, name), *units))
    return net.eval()


@torch.no_grad()
def outputs_and_accuracy(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, float]:
    model.eval()
    logits = model(x)  # (N, K)
    return logits, float((logits.argmax(1) == y).float().mean())


def insertion(model: ResNet, x: Tensor, y: Tensor, *, k: int) -> dict[str, float]:
    """Outputs and accuracy before and after inserting k zero-init residual / fresh plain units."""
    base, acc = outputs_and_accuracy(model, x, y)
    scale = float(base.abs().max())
    out: dict[str, float] = {"k": k, "accuracy": acc, "logit_scale": scale}
    for name, residual in (("zero_residual", True), ("plain", False)):
        logits, acc_k = outputs_and_accuracy(insert_units(model, k, residual=residual), x, y)
        out[f"{name}_max_diff"] = float((logits - base).abs().max())
        out[f"{name}_accuracy"] = acc_k
    return out


@torch.no_grad()
def branch_ratios(model: nn.Module, x: Tensor) -> list[float]:
    """Per residual unit: ||F(h)|| / ||shortcut(h)|| on its real input (evaluation mode)."""
    net = copy.deepcopy(model).eval()
    ratios = []
    for unit, h in _unit_inputs(net, x):
        branch = unit.bn2(unit.conv2(unit.relu(unit.bn1(unit.conv1(h)))))  # (N, C, H', W')
        shortcut = unit.downsample(h) if unit.downsample is not None else h
        ratios.append(float(branch.norm() / shortcut.norm().clamp_min(1e-12)))
    return ratios


@torch.no_grad()
def response_stds(model: nn.Module, x: Tensor) -> list[float]:
    """Std of every 3x3 layer's response (its BN output), in forward order (paper, Figure 7)."""
    net = copy.deepcopy(model).eval()
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    stds: list[float] = []
    hooks = [b.register_forward_hook(lambda _m, _i, out: stds.append(float(out.float().std()))) for b in bns]
    try:
        net(x)
    finally:
        for h in hooks:
            h.remove()
    return stds


def identity_task(task: tuple[NetSpec, Recipe, int], device: str) -> Result:
    """Train one network; then, for a residual one, the three identity measurements."""
    spec, recipe, k = task
    p, trained = train_model(spec, recipe, device=device)
    model = p.state.model.eval()
    x, y = fixed_batch(p.bundle.test if p.bundle.test is not None else p.train_eval, size=512,
                       device=p.runtime.device)
    out: Result = {"key": spec.key, "kind": spec.kind, "depth": spec.depth, "seed": spec.seed,
                   "steps": trained["steps"], "train_error": trained["train_error"],
                   "test_error": trained["test_error"], "response_std": response_stds(model, x)}
    if spec.kind == "residual":
        assert isinstance(model, ResNet)
        zero_errors = zeroed_branch_error(model, x)
        out.update({"zeroed_branch_max_error": max(zero_errors), "zeroed_branch_errors": zero_errors,
                    "insertion": insertion(model, x, y, k=k), "branch_ratio": branch_ratios(model, x)})
    return out


# -- the study: run, plot, report ----------------------------------------------------------

TITLE = "Identity: a residual block can fall back to the identity"


def describe(r: Result) -> str:
    extra = ""
    if r["kind"] == "residual":
        ins = r["insertion"]
        extra = (f"; zeroed branch max error {r['zeroed_branch_max_error']:.2g}; +{ins['k']} zero-init units: "
                 f"max diff {ins['zero_residual_max_diff']:.2g}, +{ins['k']} plain: {ins['plain_max_diff']:.3g}")
    return f"{r['kind']:>8}-{r['depth']:<4} seed {r['seed']}: test error {100 * r['test_error']:.2f}%{extra}"


def identity_figures(results: dict[str, Result]) -> tuple[Figure, Figure]:
    from matplotlib.figure import Figure

    rs = sorted(results.values(), key=lambda r: (r["seed"], r["kind"], r["depth"]))
    rs = [r for r in rs if r["seed"] == rs[0]["seed"]]
    ratio_fig = Figure(figsize=(7, 4))
    ax = ratio_fig.subplots()
    for r in rs:
        if r["kind"] == "residual":
            ax.plot(range(1, len(r["branch_ratio"]) + 1), r["branch_ratio"], "o-", ms=3, label=f"residual-{r['depth']}")
    ax.axhline(1.0, color="grey", lw=1, ls=":")
    ax.set_xlabel("unit")
    ax.set_ylabel("||F(x)|| / ||x||")
    ax.set_title("residual branch against identity path (trained)")
    ax.grid(alpha=0.3)
    ax.legend()
    std_fig = Figure(figsize=(12, 4.4))
    axes = std_fig.subplots(1, 2, sharey=True)
    for r in rs:
        style = "-" if r["kind"] == "plain" else "--"
        values = r["response_std"]
        axes[0].plot(range(1, len(values) + 1), values, style, lw=1.5, label=f"{r['kind']}-{r['depth']}")
        axes[1].plot(range(1, len(values) + 1), sorted(values, reverse=True), style, lw=1.5,
                     label=f"{r['kind']}-{r['depth']}")
    axes[0].set_title("std of layer responses, in layer order")
    axes[1].set_title("sorted by magnitude")
    for a in axes:
        a.set_xlabel("layer index")
        a.grid(alpha=0.3)
    axes[0].set_ylabel("std")
    axes[1].legend(fontsize=8)
    return ratio_fig, std_fig


def identity_rows(results: dict[str, Result]) -> list[dict[str, Any]]:
    rows = []
    for r in sorted(results.values(), key=lambda r: (r["seed"], r["kind"], r["depth"])):
        row: dict[str, Any] = {"kind": r["kind"], "depth": r["depth"], "seed": r["seed"],
                               "test_error": r["test_error"],
                               "mean_response_std": sum(r["response_std"]) / len(r["response_std"])}
        if r["kind"] == "residual":
            ins = r["insertion"]
            row.update({"zeroed_branch_max_error": r["zeroed_branch_max_error"], "k": ins["k"],
                        "accuracy": ins["accuracy"], "zero_residual_accuracy": ins["zero_residual_accuracy"],
                        "zero_residual_max_diff": ins["zero_residual_max_diff"],
                        "plain_accuracy": ins["plain_accuracy"], "plain_max_diff": ins["plain_max_diff"],
                        "logit_scale": ins["logit_scale"],
                        "mean_branch_ratio": sum(r["branch_ratio"]) / len(r["branch_ratio"])})
        rows.append(row)
    return rows


def run_identity(recipe: Recipe, *, k: int, out_dir: Path, device: str = "cpu", workers: int | None = None,
                 quiet: bool = False, command: str = "resnets study identity") -> dict[str, Any]:
    from resnets.studies.degradation import check_run_dir, specs_for
    from resnets.studies.pool import PoolOptions, run_tasks, write_json
    from resnets.studies.report import Plot, Section, Table, environment, figure_png_base64, pct, write_report

    if k < 1:
        raise ValueError(f"--blocks must be >= 1 (the number of units to insert), got {k}")
    check_run_dir(out_dir, study=f"identity-k{k}", recipe=recipe)
    specs = specs_for(recipe)
    results = run_tasks([(s, recipe, k) for s in specs], fn=identity_task, keys=[s.key for s in specs],
                        options=PoolOptions(out_dir=out_dir, device=device, workers=workers, quiet=quiet,
                                            describe=describe))
    rows = identity_rows(results)
    write_json(out_dir / "results.json", {"rows": rows, "recipe": recipe.to_dict(), "k": k})
    res = [r for r in rows if r["kind"] == "residual"]
    ident = Table(
        headers=["network", "seed", "zeroed branch: max abs(unit(x) - x)", "accuracy %",
                 f"+{k} zero-init residual: acc % / max diff", f"+{k} fresh plain: acc % / max diff",
                 "mean norm(F(x)) / norm(x)"],
        rows=[[f"residual-{r['depth']}", str(r["seed"]), f"{r['zeroed_branch_max_error']:.2g}", pct(r["accuracy"]),
               f"{pct(r['zero_residual_accuracy'])} / {r['zero_residual_max_diff']:.2g}",
               f"{pct(r['plain_accuracy'])} / {r['plain_max_diff']:.3g}", f"{r['mean_branch_ratio']:.3f}"]
              for r in res])
    stds = Table(headers=["network", "seed", "test error %", "mean std of layer responses"],
                 rows=[[f"{r['kind']}-{r['depth']}", str(r["seed"]), pct(r["test_error"]),
                        f"{r['mean_response_std']:.3f}"] for r in rows])
    worst = max((r["zeroed_branch_max_error"] for r in res), default=math.nan)
    text = [f"Zeroing a residual branch leaves its unit the identity to within {worst:.2g} (largest difference "
            f"over every unit of every network, on real inputs). Inserting {k} zero-initialised residual units "
            f"changes the logits by at most {max((r['zero_residual_max_diff'] for r in res), default=math.nan):.2g};"
            f" inserting {k} freshly initialised plain units changes them by up to "
            f"{max((r['plain_max_diff'] for r in res), default=math.nan):.3g} (logits of magnitude up to "
            f"{max((r['logit_scale'] for r in res), default=math.nan):.3g}).",
            f"Networks trained on {recipe.data} for {recipe.iterations} iterations (batch {recipe.batch_size}, lr "
            f"{recipe.lr}); measured on up to 512 test images in evaluation mode."]
    ratio_fig, std_fig = identity_figures(results)
    sections = [
        Section("Result", text=text, tables=[ident, stds]),
        Section("Residual branches are small", images=[
            Plot("per unit: norm of the branch output over the norm of the identity path",
             figure_png_base64(ratio_fig))]),
        Section("Standard deviation of layer responses (as the paper's Figure 7)", images=[
            Plot("std of each 3x3 layer's response (after BN, before addition/ReLU); solid plain, dashed residual",
             figure_png_base64(std_fig))]),
    ]
    report, summary = write_report(out_dir, title=TITLE, sections=sections, meta=environment(device, command))
    return {"rows": rows, "results": results, "report": report, "summary": summary}
