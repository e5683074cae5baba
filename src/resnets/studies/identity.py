"""The identity study: a residual block falls back to the identity.

1. Zeroing the last layer of a residual branch (``unit.zero_init_last()``) makes its unit
   the identity (or its shortcut, where the shape changes), exactly to float precision.
2. Adding k zero-initialised residual units to a trained network leaves its outputs and
   accuracy unchanged; inserting k freshly initialised plain units does not.
3. How large the learned residual branches are against the identity path: per unit, the ratio
   of the branch output's norm to the shortcut's; and the standard deviation of every 3x3
   layer's response (after BN, before the addition and ReLU), as in the paper's Figure 7, where
   the residual nets' responses are smaller than the plain nets'. Each is decided from the
   bands over seeds, and the report says "opposite of the paper" where that is what was measured.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from resnets.models import BasicBlock, ResNet
from resnets.models.blocks import is_unit
from resnets.studies.bands import NOT_SHOWN, OPPOSITE, SHOWN, Band, band, compare, depth_colour, plot_band
from resnets.studies.gradients import fixed_batch
from resnets.studies.nets import KINDS, NetSpec
from resnets.studies.pool import Result
from resnets.studies.recipe import Recipe
from resnets.studies.report import (
    VERDICT_WORDS,
    Claim,
    Plot,
    Section,
    Table,
    environment,
    figure_png_base64,
    pct,
    write_report,
)
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
EXACT = 1e-5  # "unchanged": a difference at most this (relative to the logits' scale), float32 rounding
PAPER_FIG7 = "He et al. 2015, sec. 4.2 and Fig. 7"


def describe(r: Result) -> str:
    extra = ""
    if r["kind"] == "residual":
        ins = r["insertion"]
        extra = (f"; zeroed branch max error {r['zeroed_branch_max_error']:.2g}; +{ins['k']} zero-init units: "
                 f"max diff {ins['zero_residual_max_diff']:.2g}, +{ins['k']} plain: {ins['plain_max_diff']:.3g}")
    return f"{r['kind']:>8}-{r['depth']:<4} seed {r['seed']}: test error {100 * r['test_error']:.2f}%{extra}"


def _runs(results: dict[str, Result], kind: str, depth: int) -> list[Result]:
    return sorted((r for r in results.values() if r["kind"] == kind and r["depth"] == depth), key=lambda r: r["seed"])


def identity_figures(results: dict[str, Result]) -> tuple[Figure, Figure]:
    """The branch ratios of the residual nets, and the layer responses of every net (as Fig. 7):
    means over seeds with their min-max bands, one colour per depth (solid plain, dashed residual)."""
    from matplotlib.figure import Figure

    depths = sorted({int(r["depth"]) for r in results.values()})
    ratio_fig = Figure(figsize=(8, 4))
    ax = ratio_fig.subplots()
    for depth in depths:
        runs = [r["branch_ratio"] for r in _runs(results, "residual", depth)]
        if runs:
            plot_band(ax, range(1, len(runs[0]) + 1), runs, colour=depth_colour(depth), label=f"residual-{depth}",
                      style="o--", lw=1.5)
    ax.axhline(1.0, color="grey", lw=1, ls=":")
    ax.set_xlabel("unit (input side first)")
    ax.set_ylabel("||F(x)|| / ||x||")
    ax.set_title("residual branch against identity path (trained; dotted: equal)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    std_fig = Figure(figsize=(12, 4.4))
    axes = std_fig.subplots(1, 2, sharey=True)
    for kind in KINDS:
        for depth in depths:
            rs = _runs(results, kind, depth)
            if not rs:
                continue
            style, colour, label = "-" if kind == "plain" else "--", depth_colour(depth), f"{kind}-{depth}"
            runs = [r["response_std"] for r in rs]
            plot_band(axes[0], range(1, len(runs[0]) + 1), runs, colour=colour, label=label, style=style, lw=1.5)
            plot_band(axes[1], range(1, len(runs[0]) + 1), [sorted(v, reverse=True) for v in runs], colour=colour,
                      label=label, style=style, lw=1.5)
    axes[0].set_title("std of layer responses, in layer order")
    axes[1].set_title("sorted by magnitude")
    for a in axes:
        a.set_xlabel("layer index")
        a.grid(alpha=0.3)
    axes[0].set_ylabel("std")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return ratio_fig, std_fig


def identity_rows(results: dict[str, Result]) -> list[dict[str, Any]]:
    rows = []
    for r in sorted(results.values(), key=lambda r: (r["seed"], r["kind"], r["depth"])):
        row: dict[str, Any] = {"kind": r["kind"], "depth": r["depth"], "seed": r["seed"],
                               "test_error": r["test_error"], "train_error": r["train_error"],
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


def _column(rows: list[dict[str, Any]], kind: str, depth: int, key: str) -> Band:
    return band([r[key] for r in rows if r["kind"] == kind and r["depth"] == depth])


def below_one(b: Band) -> str:
    """The claim "smaller than the identity path" on a band of ratios: shown when every seed is below
    1, opposite when every seed is above, not shown otherwise (or for a single seed)."""
    if b.n < 2 or any(v != v for v in b.values):
        return NOT_SHOWN
    return SHOWN if b.hi < 1.0 else OPPOSITE if b.lo > 1.0 else NOT_SHOWN


def identity_effect(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every verdict of the study, from the rows (one per network and seed)."""
    res = [r for r in rows if r["kind"] == "residual"]
    depths = sorted({r["depth"] for r in res})
    out: dict[str, Any] = {"depths": depths}
    if res:
        worst = max(r["zeroed_branch_max_error"] for r in res)
        out["zeroed"] = {"max_error": worst, "verdict": SHOWN if worst <= EXACT else NOT_SHOWN}
        kept = all(r["zero_residual_max_diff"] <= EXACT * max(1.0, r["logit_scale"]) for r in res)
        moved = all(r["plain_max_diff"] > 0.01 * r["logit_scale"] for r in res)
        out["insertion"] = {"zero_residual_max_diff": max(r["zero_residual_max_diff"] for r in res),
                            "plain_max_diff": min(r["plain_max_diff"] for r in res),
                            "verdict": SHOWN if kept and moved else NOT_SHOWN}
        out["branch"] = {str(d): {"ratio": _column(rows, "residual", d, "mean_branch_ratio").to_dict(),
                                  "verdict": below_one(_column(rows, "residual", d, "mean_branch_ratio"))}
                         for d in depths}
    out["responses"] = {}
    for d in depths:
        if any(r["kind"] == "plain" and r["depth"] == d for r in rows):
            c = compare(higher=_column(rows, "plain", d, "mean_response_std"),
                        lower=_column(rows, "residual", d, "mean_response_std"))
            out["responses"][str(d)] = c.to_dict()
    if len(depths) >= 2:
        out["deeper_smaller"] = compare(higher=_column(rows, "residual", depths[0], "mean_response_std"),
                                        lower=_column(rows, "residual", depths[-1], "mean_response_std")).to_dict()
    return out


def _verdict_words(verdict: str) -> str:
    return VERDICT_WORDS.get(verdict, verdict)


def identity_claims(eff: dict[str, Any], *, k: int) -> list[Claim]:
    claims = []
    if "zeroed" in eff:
        claims.append(Claim("a residual unit whose branch's last layer is zero is exactly the identity",
                            "He et al. 2015, sec. 3.1: identity mappings can be constructed by the added layers",
                            f"largest difference {eff['zeroed']['max_error']:.2g} over every unit, on real inputs",
                            eff["zeroed"]["verdict"]))
        ins = eff["insertion"]
        claims.append(Claim(f"adding {k} zero-initialised residual units to a trained net changes nothing; "
                            f"{k} fresh plain units do",
                            "He et al. 2015, sec. 1: a deeper model so constructed is no worse than the shallower",
                            f"logits moved by at most {ins['zero_residual_max_diff']:.2g} (residual units), by at "
                            f"least {ins['plain_max_diff']:.3g} (plain units)", ins["verdict"]))
        for d, b in eff["branch"].items():
            claims.append(Claim(f"residual-{d}'s branches are smaller than its identity path (||F(x)||/||x|| < 1)",
                                "He et al. 2015, sec. 3.1 and 4.2: the residual functions are closer to zero",
                                f"mean ratio {_band(b['ratio']).text(scale=1.0, digits=2, unit='')}", b["verdict"]))
    for d, c in eff["responses"].items():
        claims.append(Claim(f"depth {d}: the residual net's layer responses are smaller than the plain net's",
                            f"{PAPER_FIG7}: 'ResNets have generally smaller responses than their plain counterparts'",
                            f"mean std plain-{d} {_band(c['higher']).text(scale=1.0, digits=3, unit='')}, residual-{d} "
                            f"{_band(c['lower']).text(scale=1.0, digits=3, unit='')}", c["verdict"]))
    if "deeper_smaller" in eff:
        c, depths = eff["deeper_smaller"], eff["depths"]
        claims.append(Claim(f"the deeper residual net has smaller responses (residual-{depths[-1]} below "
                            f"residual-{depths[0]})",
                            f"{PAPER_FIG7}: 'the deeper ResNet has smaller magnitudes of responses'",
                            f"mean std residual-{depths[0]} {_band(c['higher']).text(scale=1.0, digits=3, unit='')}, "
                            f"residual-{depths[-1]} {_band(c['lower']).text(scale=1.0, digits=3, unit='')}",
                            c["verdict"]))
    return claims


def _band(d: dict[str, Any]) -> Band:
    return Band(tuple(d["values"]))


def branch_heading(eff: dict[str, Any]) -> str:
    """The heading of the branch-ratio plot: what the data show, not what was hoped."""
    verdicts = {b["verdict"] for b in eff.get("branch", {}).values()}
    if verdicts == {SHOWN}:
        return "Residual branches are smaller than the identity path"
    if verdicts == {OPPOSITE}:
        return "Residual branches are larger than the identity path (not 'close to zero')"
    return "Residual branches against the identity path: not smaller at every depth"


def run_identity(recipe: Recipe, *, k: int, out_dir: Path, device: str = "cpu", workers: int | None = None,
                 quiet: bool = False, command: str = "resnets study identity") -> dict[str, Any]:
    from resnets.studies.degradation import check_run_dir, specs_for
    from resnets.studies.pool import PoolOptions, run_tasks, write_json

    if k < 1:
        raise ValueError(f"--blocks must be >= 1 (the number of units to insert), got {k}")
    check_run_dir(out_dir, study=f"identity-k{k}", recipe=recipe)
    specs = specs_for(recipe)
    results = run_tasks([(s, recipe, k) for s in specs], fn=identity_task, keys=[s.key for s in specs],
                        options=PoolOptions(out_dir=out_dir, device=device, workers=workers, quiet=quiet,
                                            describe=describe))
    rows = identity_rows(results)
    eff = identity_effect(rows)
    claims = identity_claims(eff, k=k)
    write_json(out_dir / "results.json", {"rows": rows, "effect": eff, "claims": [c.to_dict() for c in claims],
                                          "recipe": recipe.to_dict(), "k": k})
    report, summary = write_report(out_dir, title=TITLE, sections=identity_sections(results, rows, eff, recipe, k=k),
                                   meta=environment(device, command), claims=claims)
    return {"rows": rows, "effect": eff, "claims": claims, "results": results, "report": report, "summary": summary}


def identity_sections(results: dict[str, Result], rows: list[dict[str, Any]], eff: dict[str, Any], recipe: Recipe,
                      *, k: int) -> list[Section]:
    res = [r for r in rows if r["kind"] == "residual"]
    ident = Table(
        headers=["network", "seed", "zeroed branch: max abs(unit(x) - x)", "accuracy %",
                 f"+{k} zero-init residual: acc % / max diff", f"+{k} fresh plain: acc % / max diff",
                 "mean norm(F(x)) / norm(x)"],
        rows=[[f"residual-{r['depth']}", str(r["seed"]), f"{r['zeroed_branch_max_error']:.2g}", pct(r["accuracy"]),
               f"{pct(r['zero_residual_accuracy'])} / {r['zero_residual_max_diff']:.2g}",
               f"{pct(r['plain_accuracy'])} / {r['plain_max_diff']:.3g}", f"{r['mean_branch_ratio']:.3f}"]
              for r in res])
    stds = Table(headers=["network", "seed", "train error %", "test error %", "mean std of layer responses"],
                 rows=[[f"{r['kind']}-{r['depth']}", str(r["seed"]), pct(r["train_error"]), pct(r["test_error"]),
                        f"{r['mean_response_std']:.3f}"] for r in rows])
    text = []
    if "zeroed" in eff:
        text.append(
            f"Zeroing a residual branch leaves its unit the identity to within {eff['zeroed']['max_error']:.2g} "
            f"(largest difference over every unit of every network, on real inputs). Inserting {k} "
            f"zero-initialised residual units changes the logits by at most "
            f"{eff['insertion']['zero_residual_max_diff']:.2g}; inserting {k} freshly initialised plain units "
            f"changes them by at least {eff['insertion']['plain_max_diff']:.3g} (logits of magnitude up to "
            f"{max(r['logit_scale'] for r in res):.3g}).")
    text.append(f"Networks trained on {recipe.data} for {recipe.iterations} iterations (batch {recipe.batch_size}, lr "
                f"{recipe.lr}, seeds {list(recipe.seeds)}); measured on up to 512 test images in evaluation mode. "
                "Verdicts compare the bands over seeds (min-max): shown when they are apart in the paper's "
                "direction, the opposite of the paper when apart the other way, not shown when they overlap.")
    fig7 = "; ".join(f"depth {d}: {_verdict_words(c['verdict'])}" for d, c in eff["responses"].items())
    ratio_fig, std_fig = identity_figures(results)
    look_ratio = ("Below the dotted line at 1 a branch adds less than the signal it is given (the paper's 'residual "
                  "functions closer to zero'); above it the branch dominates. Measured here: "
                  + "; ".join(f"residual-{d} {_band(b['ratio']).text(scale=1.0, digits=2, unit='')}"
                              for d, b in eff.get("branch", {}).items()) + ".")
    look_std = ("In the paper's Fig. 7 the dashed residual lines lie below the solid plain ones of the same colour "
                f"(same depth), and the deeper residual net lies lower. Measured here: {fig7 or 'no plain twin'}.")
    return [
        Section("Result", text=text, tables=[ident, stds]),
        Section(branch_heading(eff), images=[
            Plot("per unit: norm of the branch output over the norm of the identity path; mean over seeds, shaded "
                 "min-max", figure_png_base64(ratio_fig), look_ratio)]),
        Section("Standard deviation of layer responses (as the paper's Figure 7)", images=[
            Plot("std of each 3x3 layer's response (after BN, before addition/ReLU); solid plain, dashed residual; "
                 "mean over seeds, shaded min-max", figure_png_base64(std_fig), look_std)]),
    ]
