"""The normalisation-free study: its tasks, its verdicts on constructed results, and small runs."""

from __future__ import annotations

import json
import math

from resnets.studies.bands import band
from resnets.studies.normfree import VARIANTS, normfree_claims, run_normfree, tasks_for
from resnets.studies.recipe import Recipe


def _row(variant: str, depth: int, values: list[float]) -> dict:
    return {"variant": variant, "label": VARIANTS[variant].label, "kind": VARIANTS[variant].kind, "depth": depth,
            "seeds": list(range(len(values))), "params": 1, "train_error": band(values).to_dict(),
            "test_error": band(values).to_dict(), "diverged": []}


def test_tasks_cover_every_variant_depth_and_seed():
    recipe = Recipe(depths=(8, 14), seeds=(0, 1), plain_max_depth=8)
    tasks = tasks_for(recipe)
    keys = {(v, s.depth, s.seed) for v, s, _ in tasks}
    assert len(keys) == len(tasks) == 2 * (6 + 4)  # plain variants only up to depth 8
    assert all(s.kind == VARIANTS[v].kind for v, s, _ in tasks)
    assert tasks[0][1].depth == 14  # deepest first


def _verdicts(rows):
    return {c.claim.split(" (depth")[0]: c.verdict for c in normfree_claims(rows)}


def test_expected_picture_gives_shown_verdicts():
    rows = [_row("plain-bn", 32, [0.05, 0.06, 0.07]), _row("plain-nonorm", 32, [0.85, 0.9, 0.88]),
            _row("residual-bn", 32, [0.01, 0.02, 0.015]), _row("residual-nonorm", 32, [0.9, 0.9, 0.9]),
            _row("fixup", 32, [0.01, 0.015, 0.02]), _row("skipinit", 32, [0.012, 0.02, 0.018])]
    verdicts = _verdicts(rows)
    assert len(verdicts) == 6 and set(verdicts.values()) == {"shown"}


def test_overlapping_bands_are_not_shown_and_reversed_ones_opposite():
    rows = [_row("plain-bn", 32, [0.3, 0.5, 0.4]), _row("plain-nonorm", 32, [0.35, 0.6, 0.45]),
            _row("residual-bn", 32, [0.01, 0.02, 0.015]), _row("residual-nonorm", 32, [0.005, 0.008, 0.006]),
            _row("fixup", 32, [0.2, 0.25, 0.3]), _row("skipinit", 32, [0.01, 0.03, 0.02])]
    v = _verdicts(rows)
    assert v["Without normalisation, the deep plain net does not train (BN's plain twin does)"] == "not shown"
    assert v["Without normalisation and with the default initialisation, the deep residual net trains badly or "
             "diverges"] == "opposite"
    assert v["Fixup reaches the training error of the BN residual net"] == "opposite"
    assert v["SkipInit reaches the training error of the BN residual net"] == "shown"


def test_claims_use_the_deepest_depth_and_one_seed_decides_nothing():
    rows = [_row("plain-bn", 8, [0.01]), _row("plain-nonorm", 8, [0.9]), _row("plain-bn", 20, [0.02]),
            _row("plain-nonorm", 20, [0.9])]
    claims = normfree_claims(rows)
    assert len(claims) == 1 and "(depth 20)" in claims[0].claim and claims[0].verdict == "not shown"


def test_small_normfree_study_shows_diverged_runs(tmp_path):
    """Every variant of a small ladder, at a learning rate (40) that makes some of them diverge."""
    recipe = Recipe(data="digits", batch_size=32, iterations=6, eval_every=2, lr=40.0, momentum=0.0,
                    train_eval_samples=100, final_train_eval_samples=100, depths=(8,), seeds=(0, 1))
    out = run_normfree(recipe, out_dir=tmp_path, workers=1, quiet=True)
    assert len(list((tmp_path / "nets").glob("*.json"))) == 12
    fixup = json.loads((tmp_path / "nets" / "fixup-8-s1.json").read_text())
    assert fixup["variant"] == "fixup" and fixup["depth"] == 8 and fixup["seed"] == 1
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [(r["variant"], r["depth"]) for r in rows] == [(v, 8) for v in VARIANTS]
    assert all(r["train_error"]["n"] == 2 for r in rows)
    # a gate or Fixup's scalars add parameters; removing BN removes some
    params = {r["variant"]: r["params"] for r in rows}
    assert params["skipinit"] - params["residual-nonorm"] == 3
    assert params["fixup"] - params["residual-nonorm"] == 5 * 3 + 2
    assert params["residual-nonorm"] < params["residual-bn"]
    assert len(out["claims"]) == 6 and all(c.verdict in ("shown", "not shown", "opposite") for c in out["claims"])
    html = out["report"].read_text()
    assert html.count('<img src="data:image/png;base64,') == 2 and html.count("What to look at") == 2
    # diverged runs are kept, with their step, and shown
    diverged = [r for r in out["results"].values() if r["diverged_at"] is not None]
    assert diverged, "a learning rate of 40 without normalisation must diverge"
    row = next(r for r in out["rows"] if r["variant"] == diverged[0]["variant"])
    assert row["diverged"] and all(isinstance(s, int) and 1 <= s <= 6 for s in row["diverged"])
    assert "diverged" in out["summary"].read_text()
    assert all(not math.isnan(r["train_error"]) for r in out["results"].values())
    finished = [r for r in out["results"].values() if r["diverged_at"] is None]
    assert all(r["steps"] == 6 and len(r["curve"]["step"]) == 3 for r in finished)


def test_cli_normfree_defaults_and_bad_input(tmp_path, capsys):
    from resnets.cli import main
    from resnets.commands.studies import _recipe, build_args

    args = build_args(["study", "normfree"])
    assert _recipe("normfree", args, "cpu").data == "digits" and len(_recipe("normfree", args, "cpu").seeds) >= 3
    assert _recipe("normfree", args, "cuda").data == "cifar10"
    assert main(["study", "normfree", "--depths", "9", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "6n+2" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
