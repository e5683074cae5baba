"""The degradation study (He et al. 2015, Figure 6): plain nets get worse with depth,
residual nets do not.

Every network of a depth ladder, plain and residual, is trained under one recipe and several
seeds; the verdicts are decided from the seed bands (:mod:`resnets.studies.bands`) and the report
(:mod:`resnets.studies.degradation_report`) shows the error curves and the final errors against
depth as the mean over seeds with the min-max band, one colour per depth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnets.studies.bands import NOT_SHOWN, OPPOSITE, SHOWN, Band, band, compare, no_worse
from resnets.studies.degradation_report import (
    LOOK_AT_CURVES,
    LOOK_AT_DEPTH,
    claims,
    effect_text,
    figure6,
    figure_depth,
    held_out_text,
    ladder_text,
)
from resnets.studies.nets import KINDS, NetSpec, ladder
from resnets.studies.pool import PoolOptions, Result, run_tasks, write_json
from resnets.studies.recipe import Recipe
from resnets.studies.report import Plot, Section, Table, environment, figure_png_base64, markdown_table, pct, write_report
from resnets.studies.trainer import train_network

TITLE = "Degradation: plain against residual networks of increasing depth"
PLAIN_FACTOR = 2.0  # the degradation claim: the deepest plain net's training error at least twice the shallowest's
# "no worse": a deeper residual net counts as worse only beyond this many points of error (0.5 %): on the
# CPU default's 1,438 training images, one image is 0.07 %, and 0 against 1 wrong image is no effect
NO_WORSE_TOLERANCE = 0.005


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


def summarise(results: dict[str, Result]) -> list[dict[str, Any]]:
    """One row per (kind, depth): the final errors' band over seeds (mean, std, min, max) and the
    per-seed values."""
    groups: dict[tuple[str, int], list[Result]] = {}
    for r in results.values():
        groups.setdefault((r["kind"], int(r["depth"])), []).append(r)
    rows = []
    for (kind, depth), rs in sorted(groups.items(), key=lambda kv: (list(KINDS).index(kv[0][0]), kv[0][1])):
        rs = sorted(rs, key=lambda r: r["seed"])
        row: dict[str, Any] = {"kind": kind, "depth": depth, "params": rs[0]["params"], "seeds": [r["seed"] for r in rs]}
        for key in ("train_error", "test_error"):
            b = band([r[key] for r in rs])
            row.update({key: b.mean, f"{key}_std": b.std, f"{key}_min": b.lo, f"{key}_max": b.hi,
                        f"{key}s": list(b.values)})
        rows.append(row)
    return rows


def row_band(row: dict[str, Any], key: str) -> Band:
    """The band over seeds of ``key`` ("train_error" or "test_error") of a summary row."""
    return band(row[f"{key}s"])


def effect(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The paper's claims decided from the seed bands of the shallowest and deepest net of each kind:
    the deepest plain net trains to at least ``PLAIN_FACTOR`` times the shallowest's training error
    with the bands apart (:func:`resnets.studies.bands.compare`), and the deepest residual net is no
    worse than the shallowest beyond ``NO_WORSE_TOLERANCE`` (:func:`resnets.studies.bands.no_worse`);
    the same on test error (plain: higher, any factor). ``shown`` when both training-error claims are."""
    out: dict[str, Any] = {"factor": PLAIN_FACTOR, "tolerance": NO_WORSE_TOLERANCE}
    for kind in KINDS:
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["depth"])
        if len(mine) < 2:
            continue
        shallow, deep = mine[0], mine[-1]
        entry: dict[str, Any] = {"shallow_depth": shallow["depth"], "deep_depth": deep["depth"]}
        for key in ("train_error", "test_error"):
            hi, lo = row_band(deep, key), row_band(shallow, key)
            entry.update({f"shallow_{key}": lo.mean, f"deep_{key}": hi.mean,
                          f"shallow_{key}_band": lo.to_dict(), f"deep_{key}_band": hi.to_dict()})
            if kind == "plain":
                c = compare(higher=hi, lower=lo, factor=PLAIN_FACTOR if key == "train_error" else 1.0)
                entry[key.replace("error", "verdict")] = c.verdict
                entry[key.replace("error", "separated")] = c.separated
            else:
                entry[key.replace("error", "verdict")] = no_worse(deep=hi, shallow=lo, tolerance=NO_WORSE_TOLERANCE)
                entry[key.replace("error", "separated")] = hi.lo > lo.hi or lo.lo > hi.hi
        out[kind] = entry
    plain, res = out.get("plain", {}), out.get("residual", {})
    out["plain_degrades"] = plain.get("train_verdict") == SHOWN
    out["residual_does_not"] = res.get("train_verdict") == SHOWN
    out["shown"] = out["plain_degrades"] and out["residual_does_not"]
    verdicts = (plain.get("train_verdict"), res.get("train_verdict"))
    out["verdict"] = SHOWN if out["shown"] else OPPOSITE if OPPOSITE in verdicts else NOT_SHOWN
    return out


def result_table(rows: list[dict[str, Any]], *, reference: dict[int, float] | None = None) -> Table:
    """Per (kind, depth): the final training and test error over seeds, mean ± std and min-max."""
    headers = ["network", "depth", "params", "seeds", "train error % (mean ± std)", "train min-max %",
               "test error % (mean ± std)", "test min-max %"]
    if reference is not None:
        headers.append("paper test error %")
    body = []
    for r in rows:
        row = [r["kind"], str(r["depth"]), f"{r['params']:,}", str(len(r["seeds"]))]
        for key in ("train_error", "test_error"):
            row += [f"{pct(r[key])} ± {pct(r[key + '_std'])}", f"{pct(r[key + '_min'])}-{pct(r[key + '_max'])}"]
        if reference is not None:
            ref = reference.get(r["depth"]) if r["kind"] == "residual" else None
            row.append("-" if ref is None else f"{ref:.2f}")
        body.append(row)
    return Table(headers=headers, rows=body)


def markdown_rows(rows: list[dict[str, Any]], *, reference: dict[int, float] | None = None) -> list[str]:
    """The result table as Markdown lines (for the terminal)."""
    return markdown_table(result_table(rows, reference=reference)).splitlines()


@dataclass
class StudyOutput:
    out_dir: Path
    rows: list[dict[str, Any]]
    effect: dict[str, Any]
    results: dict[str, Result] = field(repr=False)
    report: Path | None = None
    summary: Path | None = None


def how_text(recipe: Recipe) -> str:
    """The recipe and how the errors were measured, in words."""
    size = f" resized to {recipe.image_size}x{recipe.image_size}" if recipe.image_size else ""
    warmup = (f", warm-up at lr {recipe.lr / 10:g} for {recipe.warmup_iterations} iterations at depth >= "
              f"{recipe.warmup_min_depth}" if recipe.warmup_iterations else "")
    return (f"Recipe: {recipe.data}{size}, batch {recipe.batch_size}, {recipe.iterations} iterations, SGD momentum "
            f"{recipe.momentum}, lr {recipe.lr} divided by 10 at {list(recipe.milestones)}, weight decay "
            f"{recipe.weight_decay}, seeds {list(recipe.seeds)}{warmup}. "
            "Training error: evaluation mode, no augmentation, on the whole training split (up to "
            f"{recipe.final_train_eval_samples} images) for the table and on a fixed subset of at most "
            f"{recipe.train_eval_samples} of them for the curves; test error: the test split, which chooses nothing. "
            "Every figure is over the seeds: mean ± standard deviation, and the min-max range.")


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
    text = [effect_text(eff), *ladder_text(rows, key="train_error"), *ladder_text(rows, key="test_error")]
    sections = [
        Section("Result", text=[*text, held_out_text(eff), how_text(recipe)],
                tables=[result_table(rows, reference=reference)]),
        Section("Error against iterations (as the paper's Figure 6)",
                images=[Plot("training (top) and test (bottom) error of the plain (left) and residual (right) nets: "
                             "mean over seeds, min-max band shaded", figure_png_base64(figure6(results)),
                             look_at=LOOK_AT_CURVES)]),
        Section("Final error against depth (as the paper's Table 6)",
                images=[Plot("final training (left) and test (right) error against depth: mean over seeds, "
                             "min-max bar", figure_png_base64(figure_depth(rows)), look_at=LOOK_AT_DEPTH)]),
    ]
    report, summary = write_report(out_dir, title=title, sections=sections, meta=environment(device, command),
                                   claims=claims(eff))
    return StudyOutput(out_dir=out_dir, rows=rows, effect=eff, results=results, report=report, summary=summary)
