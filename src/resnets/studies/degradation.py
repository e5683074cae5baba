"""The degradation study (He et al. 2015, Figure 6): plain nets get worse with depth,
residual nets do not.

Every network of a depth ladder, plain and residual, is trained under one recipe; the
report shows training and test error against iterations (plain on the left, residual on
the right, one colour per depth; thin dashed = training, bold = test) and the final table.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from resnets.studies.nets import KINDS, NetSpec, ladder
from resnets.studies.pool import PoolOptions, Result, run_tasks, write_json
from resnets.studies.recipe import Recipe
from resnets.studies.report import Plot, Section, Table, environment, figure_png_base64, markdown_table, pct, write_report
from resnets.studies.trainer import train_network

TITLE = "Degradation: plain against residual networks of increasing depth"


def train_task(task: tuple[NetSpec, Recipe], device: str) -> Result:
    """One network of the ladder (module level: runs in a worker process)."""
    spec, recipe = task
    return train_network(spec, recipe, device=device)


def describe(r: Result) -> str:
    """The one line printed when a network finishes."""
    diverged = f" (loss diverged at step {r['diverged_at']})" if r.get("diverged_at") is not None else ""
    return (f"{r['kind']:>8}-{r['depth']:<4} seed {r['seed']}: train error {pct(r['train_error'])}%, "
            f"test error {pct(r['test_error'])}% after {r['steps']} iterations, {r['elapsed_s']:.0f} s{diverged}")


def specs_for(recipe: Recipe) -> list[NetSpec]:
    specs = ladder(list(recipe.depths), seeds=list(recipe.seeds))
    return [s for s in specs if s.kind != "plain" or recipe.plain_max_depth is None or s.depth <= recipe.plain_max_depth]


def check_run_dir(out_dir: Path, *, study: str, recipe: Recipe) -> None:
    """Remember the recipe of ``out_dir``; resuming under another recipe is an error."""
    path = out_dir / "study.json"
    wanted = {"study": study, "recipe": recipe.to_dict()}
    if path.is_file():
        saved = json.loads(path.read_text())
        if json.loads(json.dumps(saved)) != json.loads(json.dumps(wanted)):
            raise ValueError(
                f"{out_dir} holds a {saved.get('study')} study with a different recipe ({path}); "
                "rerun with the same options to resume it, or give a new --out directory"
            )
        return
    write_json(path, wanted)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(results: dict[str, Result]) -> list[dict[str, Any]]:
    """One row per (kind, depth): final errors, mean and std over seeds, and the per-seed values."""
    groups: dict[tuple[str, int], list[Result]] = {}
    for r in results.values():
        groups.setdefault((r["kind"], int(r["depth"])), []).append(r)
    rows = []
    for (kind, depth), rs in sorted(groups.items(), key=lambda kv: (list(KINDS).index(kv[0][0]), kv[0][1])):
        rs = sorted(rs, key=lambda r: r["seed"])
        train, test = [r["train_error"] for r in rs], [r["test_error"] for r in rs]
        (tr_m, tr_s), (te_m, te_s) = _mean_std(train), _mean_std(test)
        rows.append({"kind": kind, "depth": depth, "params": rs[0]["params"], "seeds": [r["seed"] for r in rs],
                     "train_error": tr_m, "train_error_std": tr_s, "test_error": te_m, "test_error_std": te_s,
                     "train_errors": train, "test_errors": test})
    return rows


def effect(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The papers' claim on training error: deepest plain > shallowest plain, deepest residual
    <= shallowest residual (means over seeds)."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["depth"])
        if len(mine) >= 2:
            out[kind] = {"shallow_depth": mine[0]["depth"], "deep_depth": mine[-1]["depth"],
                         "shallow_train_error": mine[0]["train_error"], "deep_train_error": mine[-1]["train_error"]}
    plain, res = out.get("plain"), out.get("residual")
    out["plain_degrades"] = bool(plain and plain["deep_train_error"] > plain["shallow_train_error"])
    out["residual_does_not"] = bool(res and res["deep_train_error"] <= res["shallow_train_error"])
    out["shown"] = out["plain_degrades"] and out["residual_does_not"]
    return out


def _mean_curve(rs: list[Result], key: str) -> tuple[list[float], list[float]]:
    steps = rs[0]["curve"]["step"]
    values = [statistics.fmean(r["curve"][key][i] for r in rs) for i in range(len(steps))]
    return steps, values


def figure6(results: dict[str, Result]) -> Figure:
    """Plain (left) and residual (right): error (%) against iterations, one colour per depth."""
    fig = Figure(figsize=(12, 4.6))
    axes = fig.subplots(1, 2, sharey=True)
    depths = sorted({int(r["depth"]) for r in results.values()})
    colours = {d: f"C{i}" for i, d in enumerate(depths)}
    for ax, kind in zip(axes, KINDS):
        for depth in depths:
            rs = [r for r in results.values() if r["kind"] == kind and r["depth"] == depth and r["curve"]["step"]]
            if not rs:
                continue
            steps, train = _mean_curve(rs, "train_error")
            _, test = _mean_curve(rs, "test_error")
            ax.plot(steps, [100 * v for v in train], "--", lw=1, color=colours[depth])
            ax.plot(steps, [100 * v for v in test], "-", lw=2, color=colours[depth], label=f"{kind}-{depth}")
        ax.set_title(f"{kind} networks (dashed: training, bold: test)")
        ax.set_xlabel("iterations")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("error (%)")
    # like the paper's 0-20% axis: the final errors fill the plot; the first iterations run off the top
    finals = [100 * r[k] for r in results.values() for k in ("train_error", "test_error") if r[k] == r[k]]
    axes[0].set_ylim(0, min(100.0, max(5.0, 2.5 * max(finals, default=40.0))))
    return fig


def result_table(rows: list[dict[str, Any]], *, reference: dict[int, float] | None = None) -> Table:
    headers = ["network", "depth", "params", "seeds", "train error %", "test error %"]
    if reference is not None:
        headers.append("paper test error %")
    body = []
    for r in rows:
        sd = len(r["seeds"]) > 1
        row = [r["kind"], str(r["depth"]), f"{r['params']:,}", str(len(r["seeds"])),
               pct(r["train_error"]) + (f" ± {pct(r['train_error_std'])}" if sd else ""),
               pct(r["test_error"]) + (f" ± {pct(r['test_error_std'])}" if sd else "")]
        if reference is not None:
            ref = reference.get(r["depth"]) if r["kind"] == "residual" else None
            row.append("-" if ref is None else f"{ref:.2f}")
        body.append(row)
    return Table(headers=headers, rows=body)


def markdown_rows(rows: list[dict[str, Any]], *, reference: dict[int, float] | None = None) -> list[str]:
    """The result table as Markdown lines (for the terminal)."""
    return markdown_table(result_table(rows, reference=reference)).splitlines()


def effect_text(e: dict[str, Any]) -> str:
    if "plain" not in e or "residual" not in e:
        return "The ladder needs at least two depths of each kind to test the effect."
    p, r = e["plain"], e["residual"]
    verdict = "shown" if e["shown"] else "NOT shown by this run"
    return (f"Effect {verdict}: plain-{p['deep_depth']} trains to {pct(p['deep_train_error'])}% error against "
            f"{pct(p['shallow_train_error'])}% for plain-{p['shallow_depth']} (degradation: "
            f"{'yes' if e['plain_degrades'] else 'no'}); residual-{r['deep_depth']} reaches "
            f"{pct(r['deep_train_error'])}% against {pct(r['shallow_train_error'])}% for residual-{r['shallow_depth']} "
            f"(deeper no worse: {'yes' if e['residual_does_not'] else 'no'}).")


@dataclass
class StudyOutput:
    out_dir: Path
    rows: list[dict[str, Any]]
    effect: dict[str, Any]
    results: dict[str, Result] = field(repr=False)
    report: Path | None = None
    summary: Path | None = None


def run_degradation(
    recipe: Recipe, *, out_dir: Path, device: str = "cpu", workers: int | None = None, quiet: bool = False,
    command: str = "resnets study degradation", reference: dict[int, float] | None = None,
    title: str = TITLE, study: str = "degradation",
) -> StudyOutput:
    """Train the ladder (resuming from ``out_dir``), then write results.json and the report."""
    check_run_dir(out_dir, study=study, recipe=recipe)
    specs = specs_for(recipe)
    results = run_tasks([(s, recipe) for s in specs], fn=train_task, keys=[s.key for s in specs],
                        options=PoolOptions(out_dir=out_dir, device=device, workers=workers, quiet=quiet,
                                            describe=describe))
    rows = summarise(results)
    eff = effect(rows)
    write_json(out_dir / "results.json", {"rows": rows, "effect": eff, "recipe": recipe.to_dict()})
    how = (f"Recipe: {recipe.data}, batch {recipe.batch_size}, {recipe.iterations} iterations, SGD momentum "
           f"{recipe.momentum}, lr {recipe.lr} divided by 10 at {list(recipe.milestones)}, weight decay "
           f"{recipe.weight_decay}, seeds {list(recipe.seeds)}"
           + (f", warm-up at lr {recipe.lr / 10:g} for {recipe.warmup_iterations} iterations at depth >= "
              f"{recipe.warmup_min_depth}" if recipe.warmup_iterations else "") + ". "
           "Training error: evaluation mode, no augmentation, on the whole training split for the table and on "
           f"a fixed subset of at most {recipe.train_eval_samples} of its images for the curves; test error: the "
           "test split, which chooses nothing. "
           "Errors are means over seeds (± standard deviation).")
    sections = [
        Section("Result", text=[effect_text(eff), how], tables=[result_table(rows, reference=reference)]),
        Section("Error against iterations (as the paper's Figure 6)",
                images=[Plot("plain (left) and residual (right) networks: training (dashed) and test (bold) error",
                              figure_png_base64(figure6(results)))]),
    ]
    report, summary = write_report(out_dir, title=title, sections=sections, meta=environment(device, command))
    return StudyOutput(out_dir=out_dir, rows=rows, effect=eff, results=results, report=report, summary=summary)
