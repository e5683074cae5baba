"""The lesion study (Veit, Wilber and Belongie 2016, "Residual networks behave like ensembles of
relatively shallow networks", section 4): delete blocks from a trained network at test time.

Deleting a unit replaces it by what it computes without its residual branch: the identity, or
its shortcut where the shape changes (for option A the strided zero-pad, a map without weights),
followed by the unit's final ReLU on post-activation units. For the plain twin a unit that keeps
the shape becomes the identity; a downsampling unit (stride 2, more channels) becomes the same
strided zero-pad, so that the rest of the network still receives maps of the right shape.
The paper treats downsampling blocks apart (their deletion hurts more), and so does this study:
the single-block curves mark them, and the k-random deletions draw only among the other units.

>>> broken = lesion(model, units=[3, 7])   # a copy of model without its 4th and 8th units
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from resnets.models import ResNet
from resnets.models.blocks import Unit, ZeroPadShortcut
from resnets.studies.nets import NetSpec
from resnets.studies.pool import Result
from resnets.studies.recipe import Recipe


def _channels(unit: Unit) -> tuple[int, int]:
    """(input, output) channels of a unit's main path."""
    shortcut = unit.downsample
    skip = {id(m) for m in shortcut.modules()} if shortcut is not None else set()
    convs = [m for m in unit.modules() if isinstance(m, nn.Conv2d) and id(m) not in skip]
    return convs[0].in_channels, convs[-1].out_channels


def downsamples(unit: Unit) -> bool:
    """True for a unit that changes the shape of its input (stride or channels)."""
    c_in, c_out = _channels(unit)
    return unit.stride != 1 or c_in != c_out


class Deleted(nn.Module):
    """A unit without its branch: its shortcut (plain units: identity, or the option-A zero-pad where
    the shape changes), then the unit's final ReLU on post-activation units."""

    def __init__(self, unit: Unit) -> None:
        super().__init__()
        self.unit = unit  # only its shortcut runs
        c_in, c_out = _channels(unit)
        self.pad = (ZeroPadShortcut(stride=unit.stride, extra_channels=c_out - c_in)
                    if not unit.residual and downsamples(unit) else None)

    def forward(self, x: Tensor) -> Tensor:
        y = self.pad(x) if self.pad is not None else self.unit.shortcut(x)
        return y if self.unit.preact else F.relu(y)


def lesion(model: ResNet, *, units: Sequence[int]) -> ResNet:
    """A copy of ``model`` in which the units at ``units`` (indices into ``model.units()``) are
    deleted; ``model`` itself is untouched."""
    count = len(model.units())
    bad = [i for i in units if not 0 <= i < count]
    if bad:
        raise ValueError(f"unit indices {bad} are out of range: the network has units 0..{count - 1}")
    net = copy.deepcopy(model)
    places = [(stage, j) for stage in net.stages() for j in range(len(stage))]
    for i in set(units):
        stage, j = places[i]
        unit = stage[j]
        assert isinstance(unit, Unit)
        stage[j] = Deleted(unit)
    return net


def deletable(model: ResNet) -> list[int]:
    """The units that keep their input's shape (the k-random deletions draw among these)."""
    return [i for i, u in enumerate(model.units()) if not downsamples(u)]


def draws_of(candidates: Sequence[int], *, k: int, draws: int, seed: int) -> list[list[int]]:
    """``draws`` random sets of k units out of ``candidates`` (reproducible from ``seed``)."""
    rng = random.Random(seed * 100_003 + k)
    return [sorted(rng.sample(list(candidates), k)) for _ in range(draws)]


def measure_lesions(model: ResNet, error: Any, *, draws: int, seed: int) -> dict[str, Any]:
    """Test error of ``model`` intact, without each single unit, and without k random units
    (k = 1 .. all deletable units, ``draws`` draws each); ``error(net)`` measures one network."""
    units = model.units()
    single = [{"unit": i, "downsampling": downsamples(u), "error": error(lesion(model, units=[i]))}
              for i, u in enumerate(units)]
    candidates = deletable(model)
    ks = list(range(1, len(candidates) + 1))
    random_errors = [[error(lesion(model, units=s)) for s in draws_of(candidates, k=k, draws=draws, seed=seed)]
                     for k in ks]
    return {"intact": error(model), "single": single, "k": ks, "random": random_errors, "draws": draws}


def lesion_task(task: tuple[NetSpec, Recipe, int], device: str) -> Result:
    """Train one network, then measure its lesions on the test split."""
    from resnets.studies.trainer import train_model
    from resnets.train import evaluate

    spec, recipe, draws = task
    p, trained = train_model(spec, recipe, device=device)
    split = p.bundle.test if p.bundle.test is not None else p.train_eval

    def error(net: nn.Module) -> float:
        return 1.0 - float(evaluate(net, split, runtime=p.runtime)["acc"])

    model = p.state.model.eval()
    assert isinstance(model, ResNet)
    out: Result = {k: trained[k] for k in ("key", "kind", "depth", "seed", "steps", "diverged_at", "train_error",
                                           "test_error", "elapsed_s")}
    out["num_classes"] = int(model.num_classes)
    out["lesion"] = measure_lesions(model, error, draws=draws, seed=spec.seed)
    return out


# -- the study: summarise, plot, report ------------------------------------------------------

TITLE = "Lesion: deleting blocks from trained residual and plain networks"
PAPER = "Veit, Wilber and Belongie 2016"


def describe(r: Result) -> str:
    """The one line printed when a network is measured."""
    les = r["lesion"]
    kept = [s["error"] for s in les["single"] if not s["downsampling"]]
    mean_single = sum(kept) / len(kept) if kept else float("nan")
    return (f"{r['kind']:>8}-{r['depth']:<4} seed {r['seed']}: test error {100 * les['intact']:.2f}% intact, "
            f"{100 * mean_single:.2f}% with one block deleted (mean), "
            f"{100 * sum(les['random'][-1]) / len(les['random'][-1]):.2f}% with all {les['k'][-1]} deleted"
            if les["k"] else f"{r['kind']}-{r['depth']} seed {r['seed']}: no deletable unit")


def _groups(results: dict[str, Result]) -> dict[tuple[str, int], list[Result]]:
    groups: dict[tuple[str, int], list[Result]] = {}
    for r in sorted(results.values(), key=lambda r: (r["kind"], r["depth"], r["seed"])):
        groups.setdefault((r["kind"], int(r["depth"])), []).append(r)
    return groups


def summarise(results: dict[str, Result]) -> list[dict[str, Any]]:
    """Per (kind, depth): the seed bands of the intact error, of the mean error with one
    non-downsampling block deleted, with one downsampling block deleted, and against k."""
    from resnets.studies.bands import band

    rows = []
    for (kind, depth), rs in _groups(results).items():
        singles = [[s for s in r["lesion"]["single"] if not s["downsampling"]] for r in rs]
        downs = [[s for s in r["lesion"]["single"] if s["downsampling"]] for r in rs]
        rows.append({
            "kind": kind, "depth": depth, "seeds": [r["seed"] for r in rs], "num_classes": rs[0]["num_classes"],
            "intact": band([r["lesion"]["intact"] for r in rs]).to_dict(),
            "one_deleted": band([sum(s["error"] for s in ss) / len(ss) for ss in singles]).to_dict(),
            "worst_one_deleted": band([max(s["error"] for s in ss) for ss in singles]).to_dict(),
            "downsampling_deleted": band([sum(s["error"] for s in ds) / len(ds) for ds in downs]).to_dict()
            if all(downs) else None,
            "k": rs[0]["lesion"]["k"],
            "k_deleted": [band([sum(r["lesion"]["random"][i]) / len(r["lesion"]["random"][i]) for r in rs]).to_dict()
                          for i in range(len(rs[0]["lesion"]["k"]))],
        })
    return rows


def _band(d: dict[str, Any]) -> Any:
    from resnets.studies.bands import band

    return band(d["values"])


def smooth_growth(curve: list[dict[str, Any]]) -> tuple[str, float, float]:
    """Verdict on "the error grows smoothly with k" from the bands at each k: the band at the
    largest k is above the band at k = 1 (``bands.compare``) and no single step of the mean curve
    makes more than half of the whole rise. Returns (verdict, whole rise, largest step)."""
    from resnets.studies.bands import NOT_SHOWN, OPPOSITE, SHOWN, compare

    if len(curve) < 2:
        return NOT_SHOWN, float("nan"), float("nan")
    means = [c["mean"] for c in curve]
    rise = means[-1] - means[0]
    step = max(b - a for a, b in zip(means, means[1:]))
    verdict = compare(higher=_band(curve[-1]), lower=_band(curve[0])).verdict
    if verdict == SHOWN and step > 0.5 * rise:
        return NOT_SHOWN, rise, step
    return (verdict if verdict in (SHOWN, OPPOSITE) else NOT_SHOWN), rise, step


def at_chance(b: Any, *, chance: float) -> str:
    """Verdict on "this error is at chance": every seed within 80 % of the chance error
    (``shown``), the band below half of it (``opposite``: the network still works), else ``not shown``."""
    from resnets.studies.bands import NOT_SHOWN, OPPOSITE, SHOWN

    if b.n < 2 or any(v != v for v in b.values):
        return NOT_SHOWN
    if b.lo >= 0.8 * chance:
        return SHOWN
    return OPPOSITE if b.hi < 0.5 * chance else NOT_SHOWN


def lesion_claims(rows: list[dict[str, Any]]) -> list[Any]:
    """The paper's three claims for every depth with both a residual and a plain network."""
    from resnets.studies.bands import compare
    from resnets.studies.report import Claim

    by = {(r["kind"], r["depth"]): r for r in rows}
    claims = []
    for depth in sorted({d for k, d in by if ("residual", d) in by and ("plain", d) in by}):
        res, pl = by[("residual", depth)], by[("plain", depth)]
        chance = 1.0 - 1.0 / res["num_classes"]
        one = compare(higher=_band(pl["one_deleted"]), lower=_band(res["one_deleted"]), factor=2.0)
        claims.append(Claim(
            claim=f"Deleting one block hurts residual-{depth} far less (by 2x or more) than its plain twin",
            paper=f"{PAPER}, Fig. 3 (CIFAR-10): ResNet-110's error stays near its intact value for every "
                  "non-downsampling block deleted; a plain network goes to chance for any layer deleted",
            measured=f"one non-downsampling block deleted (mean over blocks): residual-{depth} "
                     f"{_band(res['one_deleted']).text()} (intact {_band(res['intact']).text()}; worst block "
                     f"{_band(res['worst_one_deleted']).text()}), plain-{depth} "
                     f"{_band(pl['one_deleted']).text()} (intact {_band(pl['intact']).text()})",
            verdict=one.verdict))
        claims.append(Claim(
            claim=f"With one block deleted, plain-{depth} falls to chance ({100 * chance:.0f}% error)",
            paper=f"{PAPER}, Fig. 3: the plain network's error reaches chance level",
            measured=f"plain-{depth} {_band(pl['one_deleted']).text()} (mean over its non-downsampling blocks; "
                     f"worst block {_band(pl['worst_one_deleted']).text()})",
            verdict=at_chance(_band(pl["one_deleted"]), chance=chance)))
        if res["downsampling_deleted"] is not None:
            down = compare(higher=_band(res["downsampling_deleted"]), lower=_band(res["one_deleted"]))
            claims.append(Claim(
                claim=f"In residual-{depth}, deleting a downsampling block costs more than deleting another block",
                paper=f"{PAPER}, Fig. 3: the downsampling blocks (stride 2, more channels) are the ones whose "
                      "deletion raises ResNet-110's error noticeably",
                measured=f"one downsampling block deleted: {_band(res['downsampling_deleted']).text()}; one other "
                         f"block deleted: {_band(res['one_deleted']).text()} (option-A shortcuts: the deleted "
                         "downsampling unit still subsamples and adds zero channels)",
                verdict=down.verdict))
        verdict, rise, step = smooth_growth(res["k_deleted"])
        if res["k_deleted"]:
            k_all = res["k"][-1]
            claims.append(Claim(
                claim=f"Residual-{depth}'s error grows smoothly with the number k of blocks deleted",
                paper=f"{PAPER}, Fig. 5a: ResNet-110's error rises smoothly as more random blocks are deleted",
                measured=f"k = 1: {_band(res['k_deleted'][0]).text()}; k = {k_all}: "
                         f"{_band(res['k_deleted'][-1]).text()}; largest rise between consecutive k: "
                         f"{100 * step:.2f} points of {100 * rise:.2f}",
                verdict=verdict))
    return claims


def hurtful_units(results: dict[str, Result], *, top: int = 3) -> list[str]:
    """Per residual depth, a sentence naming the units whose deletion costs most (mean over seeds)."""
    lines = []
    for (kind, depth), rs in _groups(results).items():
        if kind != "residual":
            continue
        intact = sum(r["lesion"]["intact"] for r in rs) / len(rs)
        units = rs[0]["lesion"]["single"]
        rise = [(sum(r["lesion"]["single"][i]["error"] for r in rs) / len(rs) - intact, i) for i in range(len(units))]
        worst = sorted(rise, reverse=True)[:top]
        down = [d for d, i in rise if units[i]["downsampling"]]
        lines.append(
            f"Residual-{depth}: the deletions that cost most are units "
            + ", ".join(f"{i + 1} (+{100 * d:.1f} points)" for d, i in worst)
            + (f"; deleting a downsampling unit costs {100 * sum(down) / len(down):+.1f} points on average "
               "(its option-A shortcut keeps the shape without weights)" if down else "")
            + f"; the median unit costs {100 * sorted(d for d, _ in rise)[len(rise) // 2]:+.1f} points.")
    return lines


def _mark_downsampling(ax: Any, results: dict[str, Result]) -> None:
    marked: set[int] = set()
    for r in results.values():
        for s in r["lesion"]["single"]:
            if s["downsampling"] and s["unit"] not in marked:
                marked.add(s["unit"])
                ax.axvline(s["unit"] + 1, color="grey", lw=6, alpha=0.15)


def lesion_figures(results: dict[str, Result], rows: list[dict[str, Any]]) -> tuple[Any, Any]:
    """Single deletions (error against the unit deleted) and k random deletions (error against k)."""
    from matplotlib.figure import Figure

    from resnets.studies.bands import depth_colour, plot_band

    single_fig, k_fig = Figure(figsize=(10, 4.4)), Figure(figsize=(10, 4.4))
    ax_s, ax_k = single_fig.subplots(), k_fig.subplots()
    groups = _groups(results)
    for (kind, depth), rs in groups.items():
        colour, style = depth_colour(depth), "-" if kind == "residual" else "--"
        runs = [[s["error"] for s in r["lesion"]["single"]] for r in rs]
        plot_band(ax_s, range(1, len(runs[0]) + 1), runs, colour=colour, label=f"{kind}-{depth}", style=style,
                  scale=100.0)
        intact = 100 * sum(r["lesion"]["intact"] for r in rs) / len(rs)
        ax_s.axhline(intact, color=colour, ls=style, lw=0.8, alpha=0.7)
        k_runs = [[sum(d) / len(d) for d in r["lesion"]["random"]] for r in rs]
        plot_band(ax_k, rs[0]["lesion"]["k"], k_runs, colour=colour, label=f"{kind}-{depth}", style=style,
                  scale=100.0)
    chance = 100 * (1 - 1 / rows[0]["num_classes"]) if rows else 90.0
    for ax in (ax_s, ax_k):
        ax.axhline(chance, color="grey", ls=":", lw=1)
        ax.set_ylabel("test error (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _mark_downsampling(ax_s, results)
    ax_s.set_xlabel("unit deleted (grey bars: downsampling units; thin lines: intact networks)")
    ax_s.set_title("one block deleted at test time (solid: residual, dashed: plain; dotted: chance)")
    ax_k.set_xlabel("k: number of non-downsampling blocks deleted at random")
    ax_k.set_title("k random blocks deleted (mean over draws; band: min-max over seeds)")
    return single_fig, k_fig


def lesion_table(rows: list[dict[str, Any]]) -> Any:
    from resnets.studies.report import Table

    return Table(headers=["network", "intact test error", "one block deleted (mean)", "worst single block",
                          "one downsampling block deleted", "all deletable blocks deleted"],
                 rows=[[f"{r['kind']}-{r['depth']}", _band(r["intact"]).text(), _band(r["one_deleted"]).text(),
                        _band(r["worst_one_deleted"]).text(),
                        "-" if r["downsampling_deleted"] is None else _band(r["downsampling_deleted"]).text(),
                        _band(r["k_deleted"][-1]).text() if r["k_deleted"] else "-"] for r in rows])


def run_lesion(recipe: Recipe, *, draws: int, out_dir: Path, device: str = "cpu", workers: int | None = None,
               quiet: bool = False, command: str = "resnets study lesion") -> dict[str, Any]:
    """Train the plain and residual networks of ``recipe`` (resuming from ``out_dir``), delete their
    blocks at test time, and write results.json and the report."""
    from resnets.studies.degradation import check_run_dir, specs_for
    from resnets.studies.pool import PoolOptions, run_tasks, write_json
    from resnets.studies.report import Plot, Section, environment, figure_png_base64, write_report

    if draws < 1:
        raise ValueError(f"--draws must be >= 1 (random sets of blocks deleted per k), got {draws}")
    check_run_dir(out_dir, study=f"lesion-draws{draws}", recipe=recipe)
    specs = specs_for(recipe)
    results = run_tasks([(s, recipe, draws) for s in specs], fn=lesion_task, keys=[s.key for s in specs],
                        options=PoolOptions(out_dir=out_dir, device=device, workers=workers, quiet=quiet,
                                            describe=describe))
    rows = summarise(results)
    claims = lesion_claims(rows)
    write_json(out_dir / "results.json", {"rows": rows, "claims": [c.to_dict() for c in claims],
                                          "recipe": recipe.to_dict(), "draws": draws})
    single_fig, k_fig = lesion_figures(results, rows)
    how = [f"Networks trained on {recipe.data} for {recipe.iterations} iterations (batch {recipe.batch_size}, lr "
           f"{recipe.lr} divided by 10 at {list(recipe.milestones)}, seeds {list(recipe.seeds)}), then measured on "
           "the test split in evaluation mode (BN statistics frozen) with blocks deleted; the trained network "
           "itself is never changed (each lesion is made on a copy). Figures are means over seeds ± standard "
           "deviation (min-max, number of seeds).",
           "Deleting a residual unit leaves its shortcut: the identity, or at a downsampling unit the option-A "
           "shortcut (every other pixel, zero channels added), then the unit's ReLU. Deleting a plain unit leaves "
           "the identity, or the same strided zero-pad at a downsampling unit (the plain net has no shortcut there; "
           "something must still change the shape). As in the paper, downsampling units are shown apart: "
           "the 'one block deleted' means and the k-random deletions "
           f"({draws} random sets per k) use only the units that keep the shape."]
    sections = [
        Section("Result", text=hurtful_units(results) + how, tables=[lesion_table(rows)]),
        Section("One block deleted (as the paper's Fig. 3)", images=[Plot(
            "test error with each single unit deleted; mean over seeds, shaded min-max",
            figure_png_base64(single_fig),
            look_at="The paper: deleting one block of a ResNet barely moves its error (more at the downsampling "
                    "blocks), while a plain net goes to chance. Compare the solid line (residual) with its thin "
                    "intact line, and the dashed line (plain) with the dotted chance line.")]),
        Section("k random blocks deleted (as the paper's Fig. 5a)", images=[Plot(
            "test error against the number of non-downsampling blocks deleted at random",
            figure_png_base64(k_fig),
            look_at="The paper: the residual net's error rises smoothly with k, like an ensemble losing members. "
                    "Look for a steady climb of the solid line without a cliff; the dashed plain line is "
                    "already high at k = 1.")]),
    ]
    report, summary = write_report(out_dir, title=TITLE, sections=sections, meta=environment(device, command),
                                   claims=claims)
    return {"rows": rows, "claims": claims, "results": results, "report": report, "summary": summary}


__all__ = ["Deleted", "deletable", "downsamples", "draws_of", "lesion", "lesion_task", "measure_lesions",
           "run_lesion", "smooth_growth", "summarise"]
