"""The gradient study: the gradient at every layer, and the scale of the activations, of plain
and residual networks of several depths, at initialisation and after some training.

Per network it records, on one fixed batch (training mode, as in a step): the RMS gradient
of every convolution's weight (norm / sqrt(size), so layers of different sizes compare), in
forward order, the standard deviation of every unit's output, and the ratio of the first
layer's RMS gradient to the last convolution's. A ratio near 1 means the gradient keeps its
scale across the depth; |log10(ratio)| is how many orders of magnitude it drifts.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from resnets.models.blocks import is_unit
from resnets.studies.nets import NetSpec
from resnets.studies.pool import Result
from resnets.studies.recipe import Recipe
from resnets.studies.trainer import prepare, train_chunks

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def conv_layers(model: nn.Module) -> list[nn.Conv2d]:
    """The convolutions in forward order (stem, then each unit's main path)."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def measure(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Any]:
    """Gradients and activation scales of one forward/backward pass on x (N, C, H, W), y (N,),
    in training mode, on a copy (the model's weights and BN statistics are untouched)."""
    net = copy.deepcopy(model).train()
    units = [m for m in net.modules() if is_unit(m)]
    stds: list[float] = []
    hooks = [u.register_forward_hook(lambda _m, _i, out: stds.append(float(out.detach().float().std())))
             for u in units]
    try:
        loss = nn.functional.cross_entropy(net(x).float(), y)  # (N, K) logits
        net.zero_grad(set_to_none=True)
        loss.backward()
    finally:
        for h in hooks:
            h.remove()
    convs = conv_layers(net)
    norms = [float(c.weight.grad.norm()) for c in convs]  # type: ignore[union-attr]
    rms = [n / math.sqrt(c.weight.numel()) for n, c in zip(norms, convs)]
    ratio = rms[0] / rms[-1] if rms[-1] > 0 else math.inf
    return {"loss": float(loss.detach()), "grad_norm": norms, "grad_rms": rms, "act_std": stds,
            "first_last_ratio": ratio, "log10_spread": abs(math.log10(ratio)) if 0 < ratio < math.inf else math.inf}


def fixed_batch(loader: Any, *, size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The first ``size`` images of a loader (evaluation transform for the studies' loaders)."""
    xs, ys, n = [], [], 0
    for x, y in loader.epoch(0):
        xs.append(x)
        ys.append(y)
        n += int(y.shape[0])
        if n >= size:
            break
    return torch.cat(xs)[:size].to(device), torch.cat(ys)[:size].to(device)  # (size, C, H, W), (size,)


def gradient_task(task: tuple[NetSpec, Recipe], device: str) -> Result:
    """Measure ``spec`` at initialisation, train it ``recipe.iterations`` steps, measure again."""
    spec, recipe = task
    p = prepare(spec, recipe, device=device)
    x, y = fixed_batch(p.train_eval, size=recipe.batch_size, device=p.runtime.device)
    at_init = measure(p.state.model, x, y)
    curve: dict[str, list[float]] = {k: [] for k in
                                     ("step", "train_error", "test_error", "running_train_error", "train_loss", "lr")}
    diverged = train_chunks(p, recipe, curve=curve)
    trained = measure(p.state.model, x, y)
    return {"key": spec.key, "kind": spec.kind, "depth": spec.depth, "seed": spec.seed, "steps": p.state.step,
            "diverged_at": diverged, "init": at_init, "trained": trained,
            "train_error": curve["train_error"][-1] if curve["train_error"] else math.nan,
            "test_error": curve["test_error"][-1] if curve["test_error"] else math.nan}


def init_ratio(spec: NetSpec, *, x: Tensor, y: Tensor, num_classes: int) -> float:
    """The first-to-last RMS gradient ratio of a freshly initialised network (one batch, cheap)."""
    from resnets.studies.nets import build_net

    torch.manual_seed(spec.seed)
    net = build_net(depth=spec.depth, kind=spec.kind, num_classes=num_classes, in_chans=int(x.shape[1]),
                    image_size=int(x.shape[-1]))
    return float(measure(net, x, y)["first_last_ratio"])


# -- the study: run, plot, report ----------------------------------------------------------

TITLE = "Gradient flow: plain against residual networks"
PHASES = {"init": "at initialisation", "trained": "after training"}


def describe(r: Result) -> str:
    return (f"{r['kind']:>8}-{r['depth']:<4} seed {r['seed']}: first/last RMS gradient "
            f"{r['init']['first_last_ratio']:.3g} at init, {r['trained']['first_last_ratio']:.3g} after "
            f"{r['steps']} iterations")


def _by_net(results: dict[str, Result], seed: int) -> list[Result]:
    from resnets.studies.nets import KINDS

    rs = [r for r in results.values() if r["seed"] == seed]
    return sorted(rs, key=lambda r: (list(KINDS).index(r["kind"]), r["depth"]))


def gradient_figure(results: dict[str, Result], *, key: str, ylabel: str, xlabel: str) -> Figure:
    """One panel per phase: ``key`` (a per-layer list) on a log scale against layer index."""
    from matplotlib.figure import Figure

    seed = min(r["seed"] for r in results.values())
    rs = _by_net(results, seed)
    depths = sorted({r["depth"] for r in rs})
    fig = Figure(figsize=(12, 4.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (phase, name) in zip(axes, PHASES.items()):
        for r in rs:
            values = r[phase][key]
            ax.plot(range(1, len(values) + 1), values, "-" if r["kind"] == "plain" else "--", lw=1.5,
                    color=f"C{depths.index(r['depth'])}", label=f"{r['kind']}-{r['depth']}")
        ax.set_yscale("log")
        ax.set_title(f"{name} (solid: plain, dashed: residual)")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(ylabel)
    axes[1].legend(fontsize=8, ncol=2)
    return fig


def gradient_rows(results: dict[str, Result]) -> list[dict[str, Any]]:
    return [{"kind": r["kind"], "depth": r["depth"], "seed": r["seed"],
             "init_ratio": r["init"]["first_last_ratio"], "trained_ratio": r["trained"]["first_last_ratio"],
             "init_first_rms": r["init"]["grad_rms"][0], "init_last_rms": r["init"]["grad_rms"][-1],
             "trained_first_rms": r["trained"]["grad_rms"][0], "trained_last_rms": r["trained"]["grad_rms"][-1],
             "train_error": r["train_error"]}
            for r in sorted(results.values(), key=lambda r: (r["seed"], r["kind"], r["depth"]))]


def gradient_effect(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per phase: at the deepest depth, does the residual net keep the gradient scale across its
    layers better (smaller |log10 first/last|) than the plain net? And per kind, how the
    first/last ratio moves from the shallowest to the deepest net (means over seeds)."""
    deepest, shallowest = max(r["depth"] for r in rows), min(r["depth"] for r in rows)
    out: dict[str, Any] = {"depth": deepest, "shallow_depth": shallowest}

    def mean_ratio(kind: str, depth: int, phase: str) -> float | None:
        values = [math.log10(r[f"{phase}_ratio"]) for r in rows if r["kind"] == kind and r["depth"] == depth]
        return 10 ** (sum(values) / len(values)) if values else None

    for phase in PHASES:
        p, q = mean_ratio("plain", deepest, phase), mean_ratio("residual", deepest, phase)
        if p is None or q is None:
            continue
        trend = {kind: (mean_ratio(kind, shallowest, phase), mean_ratio(kind, deepest, phase)) for kind in ("plain", "residual")}
        out[phase] = {"plain_spread": abs(math.log10(p)), "residual_spread": abs(math.log10(q)),
                      "residual_better": abs(math.log10(q)) < abs(math.log10(p)),
                      "ratio_trend": {k: {"shallow": a, "deep": b} for k, (a, b) in trend.items()}}
    return out


def run_gradients(recipe: Recipe, *, out_dir: Path, device: str = "cpu", workers: int | None = None,
                  quiet: bool = False, command: str = "resnets study gradients") -> dict[str, Any]:
    from resnets.studies.degradation import check_run_dir, specs_for
    from resnets.studies.pool import PoolOptions, run_tasks, write_json
    from resnets.studies.report import Plot, Section, Table, environment, figure_png_base64, pct, write_report

    check_run_dir(out_dir, study="gradients", recipe=recipe)
    specs = specs_for(recipe)
    results = run_tasks([(s, recipe) for s in specs], fn=gradient_task, keys=[s.key for s in specs],
                        options=PoolOptions(out_dir=out_dir, device=device, workers=workers, quiet=quiet,
                                            describe=describe))
    rows = gradient_rows(results)
    eff = gradient_effect(rows)
    write_json(out_dir / "results.json", {"rows": rows, "effect": eff, "recipe": recipe.to_dict()})
    table = Table(
        headers=["network", "depth", "seed", "first/last at init", "first/last trained", "first RMS grad (init)",
                 "last RMS grad (init)", "train error % (trained)"],
        rows=[[r["kind"], str(r["depth"]), str(r["seed"]), f"{r['init_ratio']:.3g}", f"{r['trained_ratio']:.3g}",
               f"{r['init_first_rms']:.3g}", f"{r['init_last_rms']:.3g}", pct(r["train_error"])] for r in rows])
    text = [effect_sentence(eff, phase) for phase in PHASES if phase in eff]
    text.append(f"Measured on one fixed batch of {recipe.batch_size} training images of {recipe.data} (training "
                f"mode), at initialisation and after {recipe.iterations} iterations at lr {recipe.lr} (SGD "
                f"momentum {recipe.momentum}, weight decay {recipe.weight_decay}). RMS gradient = gradient norm / "
                "sqrt(weight count); the ratio is the first convolution's against the last convolution's.")
    sections = [
        Section("Result", text=text, tables=[table]),
        Section("Gradient at every layer", images=[Plot(
            "RMS gradient of each convolution's weight against layer index (log scale)",
            figure_png_base64(gradient_figure(results, key="grad_rms", ylabel="RMS gradient", xlabel="layer")))]),
        Section("Scale of the activations", images=[Plot(
            "standard deviation of each unit's output against unit index (log scale)",
            figure_png_base64(gradient_figure(results, key="act_std", ylabel="output std", xlabel="unit")))]),
    ]
    report, summary = write_report(out_dir, title=TITLE, sections=sections, meta=environment(device, command))
    return {"rows": rows, "effect": eff, "results": results, "report": report, "summary": summary}


def effect_sentence(eff: dict[str, Any], phase: str) -> str:
    """How the first layer's gradient, relative to the last layer's, moves with depth; then the spread."""
    e = eff[phase]
    moves = []
    for kind, t in e["ratio_trend"].items():
        if t["shallow"] is not None and t["deep"] is not None and eff["shallow_depth"] != eff["depth"]:
            change = math.log10(t["deep"] / t["shallow"])
            way = "shrinks" if change < 0 else "grows"
            moves.append(f"{kind}: {way} by {abs(change):.2f} orders of magnitude ({t['shallow']:.3g} -> {t['deep']:.3g})")
    text = f"{PHASES[phase].capitalize()}: "
    if moves:
        text += (f"from depth {eff['shallow_depth']} to {eff['depth']}, the first layer's RMS gradient relative to "
                 "the last layer's: " + "; ".join(moves) + ". ")
    return text + (f"At depth {eff['depth']} the two differ by {e['plain_spread']:.2f} orders of magnitude in the "
                   f"plain net and {e['residual_spread']:.2f} in the residual net.")
