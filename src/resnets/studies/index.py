"""``resnets study all``: every study with its defaults, one after the other, each in its own
folder of the run directory, and one index page (``index.html``) that links each report with
the paper's claims beside what was measured, the verdicts and the wall times.

The studies are one table, :data:`STUDIES` (name -> runner, the paper, one line): a new study is
one entry. A study already finished in the directory is resumed (its networks are not trained
again; its report is written anew); a study that fails is reported on the index and the others
still run.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnets.studies.pool import write_json
from resnets.studies.recipe import Recipe, default_recipe
from resnets.studies.report import Claim, claims_html, environment, html_page
from resnets.train.rundir.atomic import write_atomically

Runner = Callable[..., Any]  # runner(recipe, *, out_dir, device, workers, quiet, command)


def _degradation(recipe: Recipe, **options: Any) -> Any:
    from resnets.studies.degradation import run_degradation

    return run_degradation(recipe, **options)


def _gradients(recipe: Recipe, **options: Any) -> Any:
    from resnets.studies.gradients import run_gradients

    return run_gradients(recipe, **options)


def _identity(recipe: Recipe, **options: Any) -> Any:
    from resnets.studies.identity import run_identity

    return run_identity(recipe, k=4, **options)  # the default of `resnets study identity --blocks`


def _lesion(recipe: Recipe, **options: Any) -> Any:
    from resnets.studies.lesion import run_lesion

    return run_lesion(recipe, draws=10, **options)  # the default of `resnets study lesion --draws`


def _normfree(recipe: Recipe, **options: Any) -> Any:
    from resnets.studies.normfree import run_normfree

    return run_normfree(recipe, **options)


@dataclass(frozen=True)
class StudyEntry:
    """One study of ``resnets study all``: its runner, the paper it checks, what it shows."""

    run: Runner
    paper: str
    description: str


STUDIES: dict[str, StudyEntry] = {
    "degradation": StudyEntry(_degradation, "He et al. 2015, Fig. 6 and Table 6",
                              "deeper plain nets train to a higher error; deeper residual nets do not"),
    "gradients": StudyEntry(_gradients, "He et al. 2015, sec. 4.1",
                            "with BN the gradients of deep plain nets do not vanish: degradation is an "
                            "optimisation difficulty"),
    "identity": StudyEntry(_identity, "He et al. 2015, sec. 3.1 and Fig. 7",
                           "a residual unit can be the identity; residual responses are smaller than plain ones"),
    "lesion": StudyEntry(_lesion, "Veit, Wilber and Belongie 2016, Fig. 3 and 5a",
                         "deleting a block barely hurts a residual net and ruins a plain one; the error grows "
                         "smoothly with the blocks deleted"),
    "normfree": StudyEntry(_normfree, "Zhang et al. 2019 (Fixup); De and Smith 2020 (SkipInit)",
                           "without normalisation deep plain nets do not train; residual nets whose branches "
                           "start at zero do"),
}

# `--smoke`: every study at two small depths, two seeds and a few iterations (checks the pipeline, shows nothing)
SMOKE: dict[str, Any] = {"depths": (8, 14), "seeds": (0, 1), "iterations": 20, "batch_size": 32,
                         "train_eval_samples": 200, "final_train_eval_samples": 200}


def study_recipe(name: str, device: str, *, changes: Mapping[str, Any] | None = None) -> Recipe:
    """The study's default recipe for ``device`` with ``changes`` (``iterations`` keeps the lr drops at
    the same fractions of the run)."""
    recipe = default_recipe(name, device)
    changes = dict(changes or {})
    if changes.get("iterations") is not None:
        recipe = recipe.with_iterations(int(changes.pop("iterations")))
    return recipe.replace(changes)


@dataclass
class StudyRun:
    """What ``study all`` records of one study: its folder, wall time, and error when it failed."""

    name: str
    out_dir: Path
    wall_s: float
    runs: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dir": self.out_dir.name, "wall_s": self.wall_s, "runs": self.runs,
                "error": self.error}


def _wall(out_dir: Path) -> tuple[float, int]:
    """Wall seconds and runs recorded by earlier calls in ``out_dir`` (a resumed study adds to them)."""
    try:
        saved = json.loads((out_dir / "wall.json").read_text())
        return float(saved["wall_s"]), int(saved["runs"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0, 0


def run_all(*, out_dir: Path, device: str = "cpu", workers: int | None = None, quiet: bool = False,
            changes: Mapping[str, Any] | None = None, command: str = "resnets study all",
            studies: Mapping[str, StudyEntry] | None = None,
            echo: Callable[[str], None] = print) -> list[StudyRun]:
    """Run every study of ``studies`` (default :data:`STUDIES`) into ``out_dir/<name>``, then write
    ``out_dir/index.html`` and ``index.json``. A study that fails (a missing dataset, a bad recipe) is
    recorded with its one-line error; the others still run."""
    table = dict(STUDIES if studies is None else studies)
    recipes = {name: study_recipe(name, device, changes=changes) for name in table}  # bad options: before any run
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for i, (name, entry) in enumerate(table.items(), 1):
        folder = out_dir / name
        if not quiet:
            echo(f"[{i}/{len(table)}] {name} study ({entry.paper}): writing to {folder}")
        before, count = _wall(folder)
        started = time.perf_counter()
        error = None
        try:
            entry.run(recipes[name], out_dir=folder, device=device, workers=workers, quiet=quiet, command=command)
        except (ValueError, KeyError, OSError, RuntimeError) as exc:  # one study's failure; the others run
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            echo(f"{name} study failed: {error}")
        wall = before + time.perf_counter() - started
        if error is None:
            write_json(folder / "wall.json", {"wall_s": round(wall, 1), "runs": count + 1})
        runs.append(StudyRun(name=name, out_dir=folder, wall_s=wall, runs=count + 1, error=error))
    meta = environment(device, command)
    if changes:
        meta["recipes changed"] = ", ".join(f"{k}={v}" for k, v in changes.items())
    write_index(out_dir, runs, table=table, meta=meta)
    return runs


def _claims(folder: Path) -> tuple[str, list[Claim]]:
    """The title and claims a study's report wrote (``claims.json``)."""
    try:
        saved = json.loads((folder / "claims.json").read_text())
        return str(saved.get("title", folder.name)), [Claim(**c) for c in saved.get("claims", [])]
    except (OSError, ValueError, TypeError):
        return folder.name, []


def index_html(runs: list[StudyRun], *, table: Mapping[str, StudyEntry], meta: dict[str, str]) -> str:
    def cell(text: str) -> str:
        return f"<td>{html.escape(text)}</td>"

    rows = []
    for run in runs:
        entry = table[run.name]
        report = f"{run.name}/report.html"
        link = (f"<a href=\"{html.escape(report)}\">{html.escape(run.name)}</a>" if run.error is None
                else html.escape(run.name))
        wall = f"{run.wall_s:.0f} s" + (f" over {run.runs} runs" if run.runs > 1 else "")
        status = "failed: " + run.error if run.error else "done"
        rows.append(f"<tr><td>{link}</td>{cell(entry.paper)}{cell(entry.description)}{cell(wall)}{cell(status)}</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("study (report)", "the paper", "what it shows", "wall time", "status"))
    body = ["<div class='claims'><p>Every study of this run, with its defaults; each report holds the plots, the "
            "tables and how it was measured. Verdicts are computed from the bands over seeds: <b>shown</b> (apart in the paper's "
            "direction), <b>not shown</b> (overlapping, or one seed), <b>opposite of the paper</b> (apart the other way).</p>",
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"]
    for run in runs:
        if run.error is not None:
            continue
        title, claims = _claims(run.out_dir)
        body.append(f"<h2><a href=\"{html.escape(run.name)}/report.html\">{html.escape(title)}</a></h2>")
        body.append(claims_html(claims) if claims else "<p>(no claims recorded)</p>")
    body.append("<h2>How this was measured</h2><dl>")
    body += [f"<dt>{html.escape(k)}</dt><dd><code>{html.escape(v)}</code></dd>" for k, v in meta.items()]
    body.append("</dl>")
    return html_page("Residual networks: the studies", body)


def write_index(out_dir: Path, runs: list[StudyRun], *, table: Mapping[str, StudyEntry],
                meta: dict[str, str]) -> Path:
    """``index.html`` (the page) and ``index.json`` (the same facts, with each study's claims)."""
    path = out_dir / "index.html"
    write_atomically(path, index_html(runs, table=table, meta=meta))
    write_json(out_dir / "index.json", {"meta": meta, "studies": [
        {**r.to_dict(), "paper": table[r.name].paper, "claims": [c.to_dict() for c in _claims(r.out_dir)[1]]}
        for r in runs]})
    return path
