"""Training without normalisation: SkipInit (De and Smith 2020) and Fixup (Zhang, Dauphin and Ma 2019).

Plain and residual networks of a few depths are trained under one recipe in six variants:

- plain with BN, and plain without normalisation (default He initialisation);
- residual with BN, and residual without normalisation (default He initialisation);
- Fixup: residual without normalisation, each branch's last conv and the classifier at zero, the
  branch's first conv scaled by L^-1/2 (L units), a scalar bias before every conv and activation
  and a scalar multiplier per branch;
- SkipInit: residual without normalisation, each branch times a learned scalar initialised to 0.

A plain network has no branch that could start at zero (zeroing its layers zeroes the network),
so it has no Fixup or SkipInit variant. Runs whose loss stops being finite are kept and shown as
diverged, with the step at which they did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnets.studies.nets import NetSpec
from resnets.studies.pool import Result
from resnets.studies.recipe import Recipe

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Variant:
    """One way of building the network: its kind and the model options that make it."""

    label: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


VARIANTS: dict[str, Variant] = {
    "plain-bn": Variant("plain, BN", "plain"),
    "plain-nonorm": Variant("plain, no norm", "plain", {"norm": "none"}),
    "residual-bn": Variant("residual, BN", "residual"),
    "residual-nonorm": Variant("residual, no norm", "residual", {"norm": "none"}),
    "fixup": Variant("Fixup (no norm)", "residual", {"norm": "none", "fixup": True}),
    "skipinit": Variant("SkipInit (no norm)", "residual", {"norm": "none", "branch_gate": True}),
}


def task_key(variant: str, spec: NetSpec) -> str:
    return f"{variant}-{spec.depth}-s{spec.seed}"


def tasks_for(recipe: Recipe) -> list[tuple[str, NetSpec, Recipe]]:
    """Every (variant, depth, seed), deepest first; plain ones up to ``plain_max_depth``."""
    out = []
    for depth in sorted(set(recipe.depths), reverse=True):
        for name, v in VARIANTS.items():
            if v.kind == "plain" and recipe.plain_max_depth is not None and depth > recipe.plain_max_depth:
                continue
            out += [(name, NetSpec(kind=v.kind, depth=depth, seed=s), recipe) for s in recipe.seeds]
    return out


def normfree_task(task: tuple[str, NetSpec, Recipe], device: str) -> Result:
    """Train one network of one variant (module level: runs in a worker process)."""
    from resnets.studies.trainer import train_model

    variant, spec, recipe = task
    _, result = train_model(spec, recipe, device=device, model_options=VARIANTS[variant].options)
    return {**result, "key": task_key(variant, spec), "variant": variant}


def describe(r: Result) -> str:
    from resnets.studies.report import pct

    diverged = f", loss diverged at step {r['diverged_at']}" if r.get("diverged_at") is not None else ""
    return (f"{r['variant']:>15}-{r['depth']:<4} seed {r['seed']}: train error {pct(r['train_error'])}%, "
            f"test error {pct(r['test_error'])}%{diverged}")


# -- summary and verdicts -------------------------------------------------------------------

def summarise(results: dict[str, Result]) -> list[dict[str, Any]]:
    """Per (variant, depth): seed bands of the final training and test error, and divergences."""
    from resnets.studies.bands import band

    groups: dict[tuple[str, int], list[Result]] = {}
    for r in results.values():
        groups.setdefault((r["variant"], int(r["depth"])), []).append(r)
    order = list(VARIANTS)
    rows = []
    for (variant, depth), rs in sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        rs = sorted(rs, key=lambda r: r["seed"])
        rows.append({"variant": variant, "label": VARIANTS[variant].label, "kind": VARIANTS[variant].kind,
                     "depth": depth, "seeds": [r["seed"] for r in rs], "params": rs[0]["params"],
                     "train_error": band([r["train_error"] for r in rs]).to_dict(),
                     "test_error": band([r["test_error"] for r in rs]).to_dict(),
                     "diverged": [r["diverged_at"] for r in rs if r.get("diverged_at") is not None]})
    return rows


def _band(row: dict[str, Any], key: str) -> Any:
    from resnets.studies.bands import band

    return band(row[key]["values"])


def _measured(row: dict[str, Any]) -> str:
    div = f", {len(row['diverged'])} of {len(row['seeds'])} seeds diverged" if row["diverged"] else ""
    return f"{row['label']}-{row['depth']}: training error {_band(row, 'train_error').text()}{div}"


# (claim, paper, higher variant, lower variant, factor); factor None: "no worse" (higher no worse than lower)
CLAIMS: tuple[tuple[str, str, str, str, float | None], ...] = (
    ("Without normalisation, the deep plain net does not train (BN's plain twin does)",
     "De and Smith 2020 and Zhang et al. 2019, section 1: deep networks without normalisation are hard to train; "
     "He et al. 2015 train their plain nets with BN",
     "plain-nonorm", "plain-bn", 2.0),
    ("Without normalisation and with the default initialisation, the deep residual net trains badly or diverges",
     "Zhang et al. 2019 (Fixup), section 2: with standard initialisation the output variance of a residual net "
     "without normalisation explodes with depth",
     "residual-nonorm", "residual-bn", 2.0),
    ("Fixup trains the deep residual net where the plain net without normalisation does not",
     "Zhang et al. 2019, sections 3-4: Fixup trains ResNet-110 on CIFAR-10 without normalisation",
     "plain-nonorm", "fixup", 2.0),
    ("SkipInit trains the deep residual net where the plain net without normalisation does not",
     "De and Smith 2020, section 4: SkipInit (a zero scalar on each branch) trains deep residual nets without "
     "normalisation at the usual learning rate",
     "plain-nonorm", "skipinit", 2.0),
    ("Fixup reaches the training error of the BN residual net",
     "Zhang et al. 2019, section 4.1: on CIFAR-10, Fixup's ResNet-110 trains about as well as with BN",
     "fixup", "residual-bn", None),
    ("SkipInit reaches the training error of the BN residual net",
     "De and Smith 2020, section 4: SkipInit without normalisation matches BN at small batch sizes",
     "skipinit", "residual-bn", None),
)


def normfree_claims(rows: list[dict[str, Any]]) -> list[Any]:
    """The claims at the deepest depth that every variant of the claim reached, from the bands of
    the final training error (``compare`` with a factor of 2, or ``no_worse``)."""
    from resnets.studies.bands import compare, no_worse
    from resnets.studies.report import Claim

    by = {(r["variant"], r["depth"]): r for r in rows}
    claims = []
    for claim, paper, higher, lower, factor in CLAIMS:
        depths = [d for (v, d) in by if v == higher and (lower, d) in by]
        if not depths:
            continue
        depth = max(depths)
        hi, lo = by[(higher, depth)], by[(lower, depth)]
        if factor is None:
            verdict = no_worse(deep=_band(hi, "train_error"), shallow=_band(lo, "train_error"))
        else:
            verdict = compare(higher=_band(hi, "train_error"), lower=_band(lo, "train_error"), factor=factor).verdict
        claims.append(Claim(claim=f"{claim} (depth {depth})", paper=paper,
                            measured=f"{_measured(hi)}; {_measured(lo)}", verdict=verdict))
    return claims


# -- figures and report ---------------------------------------------------------------------

def curves_figure(results: dict[str, Result]) -> Figure:
    """One panel per variant: training error against iterations, one colour per depth, mean over
    seeds with the min-max band; an x where a seed's loss diverged."""
    from matplotlib.figure import Figure

    from resnets.studies.bands import depth_colour, plot_band

    fig = Figure(figsize=(13, 7))
    axes = fig.subplots(2, 3, sharex=True, sharey=True).ravel()
    for ax, (name, v) in zip(axes, VARIANTS.items()):
        rs = [r for r in results.values() if r["variant"] == name]
        for depth in sorted({r["depth"] for r in rs}):
            mine = [r for r in rs if r["depth"] == depth]
            colour = depth_colour(depth)
            kept = [r for r in mine if r.get("diverged_at") is None]
            plot_band(ax, kept[0]["curve"]["step"] if kept else [], [r["curve"]["train_error"] for r in kept],
                      colour=colour, label=f"depth {depth}" + (f" ({len(kept)} seeds)" if len(kept) < len(mine)
                                                               else ""), scale=100.0)
            for r in mine:
                if r.get("diverged_at") is not None:  # its curve up to the divergence, thin, and an x there
                    ax.plot(r["curve"]["step"], [100 * v for v in r["curve"]["train_error"]], ":", lw=1,
                            color=colour)
                    ax.plot([r["diverged_at"]], [95], "x", color=colour, ms=9, mew=2)
        ax.set_title(v.label)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    for ax in axes[3:]:
        ax.set_xlabel("iterations")
    for ax in axes[::3]:
        ax.set_ylabel("training error (%)")
    return fig


def finals_figure(rows: list[dict[str, Any]]) -> Figure:
    """Final training error of each variant, one marker per depth (mean, min-max bar)."""
    from matplotlib.figure import Figure

    from resnets.studies.bands import depth_colour

    fig = Figure(figsize=(11, 4.2))
    ax = fig.subplots()
    names = [n for n in VARIANTS if any(r["variant"] == n for r in rows)]
    depths = sorted({r["depth"] for r in rows})
    width = 0.8 / max(1, len(depths))
    for j, depth in enumerate(depths):
        for i, name in enumerate(names):
            row = next((r for r in rows if r["variant"] == name and r["depth"] == depth), None)
            if row is None:
                continue
            b = _band(row, "train_error")
            x = i - 0.4 + width * (j + 0.5)
            ax.errorbar([x], [100 * b.mean], yerr=[[100 * (b.mean - b.lo)], [100 * (b.hi - b.mean)]], fmt="o",
                        color=depth_colour(depth), capsize=4, label=f"depth {depth}" if i == 0 else None)
            if row["diverged"]:
                ax.annotate(f"{len(row['diverged'])}/{len(row['seeds'])} diverged", (x, 100 * b.hi),
                            textcoords="offset points", xytext=(0, 6 + 9 * j), ha="center", fontsize=7,
                            color=depth_colour(depth))
    ax.set_xticks(range(len(names)), [VARIANTS[n].label for n in names], fontsize=8)
    ax.set_ylabel("final training error (%)")
    ax.set_ylim(0, 105)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig


def normfree_table(rows: list[dict[str, Any]]) -> Any:
    from resnets.studies.report import Table

    return Table(headers=["variant", "depth", "params", "training error", "test error", "diverged (step)"],
                 rows=[[r["label"], str(r["depth"]), f"{r['params']:,}", _band(r, "train_error").text(),
                        _band(r, "test_error").text(),
                        ", ".join(str(s) for s in r["diverged"]) if r["diverged"] else "-"] for r in rows])


def run_normfree(recipe: Recipe, *, out_dir: Path, device: str = "cpu", workers: int | None = None,
                 quiet: bool = False, command: str = "resnets study normfree") -> dict[str, Any]:
    """Train every variant of ``recipe``'s depths and seeds (resuming from ``out_dir``), then write
    results.json and the report."""
    from resnets.studies.degradation import check_run_dir
    from resnets.studies.pool import PoolOptions, run_tasks, write_json
    from resnets.studies.report import Plot, Section, environment, figure_png_base64, write_report

    check_run_dir(out_dir, study="normfree", recipe=recipe)
    tasks = tasks_for(recipe)
    results = run_tasks(tasks, fn=normfree_task, keys=[task_key(v, s) for v, s, _ in tasks],
                        options=PoolOptions(out_dir=out_dir, device=device, workers=workers, quiet=quiet,
                                            describe=describe))
    rows = summarise(results)
    claims = normfree_claims(rows)
    write_json(out_dir / "results.json", {"rows": rows, "claims": [c.to_dict() for c in claims],
                                          "recipe": recipe.to_dict()})
    text = [f"Every network trained on {recipe.data} for {recipe.iterations} iterations, batch {recipe.batch_size}, "
            f"SGD momentum {recipe.momentum}, lr {recipe.lr} divided by 10 at {list(recipe.milestones)}, weight decay "
            f"{recipe.weight_decay}, seeds {list(recipe.seeds)}: the same recipe for every variant, as SkipInit "
            "trains at the usual learning rate. Training error: the whole training split in evaluation mode at "
            "the end; the verdicts use it (the claims are about training, not generalisation). Figures are means "
            "over seeds ± standard deviation (min-max, number of seeds).",
            "A plain network has no residual branch that could start at zero (zeroing its layers would zero the "
            "network), so Fixup and SkipInit exist only for residual nets; the plain nets are compared with BN "
            "and without normalisation. Fixup here: scalar biases and multipliers, zero last conv and classifier, "
            "first conv scaled by L^-1/2; its paper also lowers the scalars' learning rate 10x and adds mixup, "
            "which this study leaves out. A run whose loss stopped being finite is shown as diverged (x on the "
            "curves) and keeps the error of its last weights."]
    sections = [
        Section("Result", text=text, tables=[normfree_table(rows)]),
        Section("Final training error per variant", images=[Plot(
            "final training error of each variant and depth (mean over seeds, bar: min-max)",
            figure_png_base64(finals_figure(rows)),
            look_at="The papers: without normalisation the deep plain net (and the residual net with default "
                    "init) fails, while Fixup and SkipInit train close to BN. Compare each marker of the deepest "
                    "depth with the 'residual, BN' one.")]),
        Section("Training error against iterations", images=[Plot(
            "training error against iterations, one panel per variant, one colour per depth (x: a diverged seed)",
            figure_png_base64(curves_figure(results)),
            look_at="Look for the panels whose deepest curve stays high or ends in an x (no training; a "
                    "diverged seed is drawn dotted up to its x and left out of the band), and those where it "
                    "falls like the BN panels'.")]),
    ]
    report, summary = write_report(out_dir, title=TITLE, sections=sections, meta=environment(device, command),
                                   claims=claims)
    return {"rows": rows, "claims": claims, "results": results, "report": report, "summary": summary}


TITLE = "Training without normalisation: plain, residual, Fixup and SkipInit"

__all__ = ["VARIANTS", "Variant", "normfree_claims", "normfree_task", "run_normfree", "summarise", "tasks_for"]
