"""The degradation study: its table equals the per-network results; the report; resuming."""

from __future__ import annotations

import base64
import json
import re

import pytest

from resnets.studies import degradation
from resnets.studies.bands import VERDICTS
from resnets.studies.degradation import effect, run_degradation, summarise
from resnets.studies.degradation_report import effect_text, held_out_text
from resnets.studies.report import pct


def _count_trainings(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = degradation.train_task

    def counting(task, device):
        calls.append(task[0].key)
        return real(task, device)

    monkeypatch.setattr(degradation, "train_task", counting)
    return calls


def test_table_and_report_of_a_two_seed_ladder(tmp_path, tiny_recipe):
    recipe = tiny_recipe.replace({"seeds": [0, 1]})
    out = run_degradation(recipe, out_dir=tmp_path, workers=1, quiet=True)
    nets = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "nets").glob("*.json")}
    assert sorted(nets) == sorted(f"{k}-{d}-s{s}" for k in ("plain", "residual") for d in (8, 14) for s in (0, 1))
    saved = json.loads((tmp_path / "results.json").read_text())
    table = saved["rows"]
    assert [(r["kind"], r["depth"]) for r in table] == [("plain", 8), ("plain", 14), ("residual", 8), ("residual", 14)]
    summary = (tmp_path / "summary.md").read_text()
    html = out.report.read_text()
    for row in table:
        seeds = [nets[f"{row['kind']}-{row['depth']}-s{s}"] for s in (0, 1)]
        assert row["train_errors"] == [n["train_error"] for n in seeds]
        assert row["test_errors"] == [n["test_error"] for n in seeds]
        assert all(n["steps"] == 4 and n["curve"]["step"] == [2, 4] for n in seeds)
        train = [n["train_error"] for n in seeds]
        assert row["train_error"] == pytest.approx(sum(train) / 2)
        assert (row["train_error_min"], row["train_error_max"]) == (min(train), max(train))
        cells = (f"| {row['kind']} | {row['depth']} | {seeds[0]['params']:,} | 2 | {pct(row['train_error'])} ± "
                 f"{pct(row['train_error_std'])} | {pct(min(train))}-{pct(max(train))} |")
        assert cells in summary
        assert f"<td>{pct(row['test_error_min'])}-{pct(row['test_error_max'])}</td>" in html
    # the verdicts are the bands' (four claims, each with a verdict of the bands module), in claims.json too
    assert saved["effect"]["plain"]["train_verdict"] in VERDICTS
    written = json.loads((tmp_path / "claims.json").read_text())["claims"]
    assert [c["verdict"] for c in written] == [saved["effect"][k][f"{m}_verdict"]
                                              for m in ("train", "test") for k in ("plain", "residual")]
    assert all("He et al. 2015" in c["paper"] for c in written)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert html.count("What to look at:") == 2


def test_rerun_skips_finished_networks(tmp_path, tiny_recipe, monkeypatch):
    recipe = tiny_recipe.replace({"depths": [8], "iterations": 2, "eval_every": 2, "milestones": []})
    calls = _count_trainings(monkeypatch)
    run_degradation(recipe, out_dir=tmp_path, workers=1, quiet=True)
    assert sorted(calls) == ["plain-8-s0", "residual-8-s0"]
    first = json.loads((tmp_path / "nets" / "plain-8-s0.json").read_text())
    calls.clear()
    run_degradation(recipe, out_dir=tmp_path, workers=1, quiet=True)
    assert calls == []
    (tmp_path / "nets" / "residual-8-s0.json").unlink()  # as if interrupted during this network
    run_degradation(recipe, out_dir=tmp_path, workers=1, quiet=True)
    assert calls == ["residual-8-s0"]
    assert json.loads((tmp_path / "nets" / "plain-8-s0.json").read_text()) == first


def test_resuming_under_another_recipe_is_refused(tmp_path, tiny_recipe, monkeypatch):
    _count_trainings(monkeypatch)
    recipe = tiny_recipe.replace({"depths": [8], "iterations": 2, "eval_every": 2, "milestones": []})
    run_degradation(recipe, out_dir=tmp_path, workers=1, quiet=True)
    with pytest.raises(ValueError, match="different recipe"):
        run_degradation(recipe.replace({"lr": 0.05}), out_dir=tmp_path, workers=1, quiet=True)


def _effect(plain: dict[int, list[float]], residual: dict[int, list[float]]) -> dict:
    """The effect of constructed final training errors (test error: training error + 1 point)."""
    results = {}
    for kind, by_depth in (("plain", plain), ("residual", residual)):
        for depth, errors in by_depth.items():
            for seed, e in enumerate(errors):
                results[f"{kind}-{depth}-s{seed}"] = {"kind": kind, "depth": depth, "seed": seed, "params": 1,
                                                      "train_error": e, "test_error": e + 0.01}
    return effect(summarise(results))


def _result(kind: str, depth: int, seed: int, train: float) -> dict:
    return {"kind": kind, "depth": depth, "seed": seed, "params": 1, "train_error": train, "test_error": train + 0.01}


FLAT = {8: [0.02, 0.03, 0.025], 56: [0.01, 0.02, 0.015]}  # residual: deeper no worse


def test_summary_rows_hold_the_band_of_each_network():
    rows = summarise({"a": _result("plain", 44, 0, 0.30), "b": _result("plain", 44, 1, 0.20),
                      "c": _result("plain", 8, 0, 0.01)})
    deep = next(r for r in rows if r["depth"] == 44)
    assert deep["train_error"] == pytest.approx(0.25) and deep["seeds"] == [0, 1]
    assert (deep["train_error_min"], deep["train_error_max"]) == (0.20, 0.30)
    assert deep["train_error_std"] == pytest.approx(0.0707, abs=1e-4)


def test_degradation_shown_when_the_bands_are_apart_by_the_factor():
    e = _effect({8: [0.01, 0.02, 0.015], 20: [0.03, 0.05, 0.04], 56: [0.10, 0.14, 0.12]}, FLAT)
    assert e["plain"]["train_verdict"] == "shown" and e["plain"]["train_separated"]
    assert (e["plain"]["shallow_depth"], e["plain"]["deep_depth"]) == (8, 56)
    assert e["residual"]["train_verdict"] == "shown"
    assert e["shown"] and e["verdict"] == "shown"
    text = effect_text(e)
    assert text.startswith("Degradation shown") and "the seed bands are apart" in text
    assert "12.00 ± 2.00% (10.00-14.00, 3 seeds)" in text  # the mean, the spread and the range of plain-56


def test_overlapping_bands_or_a_small_factor_are_not_shown():
    overlapping = _effect({8: [0.01, 0.08, 0.03], 56: [0.07, 0.12, 0.10]}, FLAT)
    assert overlapping["plain"]["train_verdict"] == "not shown" and not overlapping["plain"]["train_separated"]
    assert not overlapping["shown"] and overlapping["verdict"] == "not shown"
    assert "NOT shown" in effect_text(overlapping) and "the seed bands overlap" in effect_text(overlapping)
    too_small = _effect({8: [0.10, 0.11, 0.12], 56: [0.14, 0.15, 0.16]}, FLAT)  # apart, but 1.4x < 2x
    assert too_small["plain"]["train_separated"] and too_small["plain"]["train_verdict"] == "not shown"
    one_seed = _effect({8: [0.01], 56: [0.50]}, {8: [0.01], 56: [0.01]})
    assert one_seed["plain"]["train_verdict"] == "not shown" and one_seed["residual"]["train_verdict"] == "not shown"


def test_measured_opposites_are_called_so():
    plain_better = _effect({8: [0.10, 0.12, 0.11], 56: [0.01, 0.02, 0.015]}, FLAT)
    assert plain_better["plain"]["train_verdict"] == "opposite" and plain_better["verdict"] == "opposite"
    assert effect_text(plain_better).startswith("Opposite of the paper")
    residual_worse = _effect({8: [0.01, 0.02, 0.015], 56: [0.10, 0.14, 0.12]}, {8: [0.01, 0.02], 56: [0.05, 0.06]})
    assert residual_worse["plain"]["train_verdict"] == "shown"
    assert residual_worse["residual"]["train_verdict"] == "opposite" and residual_worse["residual"]["test_verdict"] == "opposite"
    assert residual_worse["verdict"] == "opposite" and not residual_worse["shown"]
    assert "opposite of the paper's Table 6" in held_out_text(residual_worse)


def test_cpu_default_is_a_seeded_ladder_deep_enough_for_plain_nets_to_fail():
    from resnets.studies.degradation import specs_for
    from resnets.studies.recipe import PAPER_CIFAR10, default_recipe

    recipe = default_recipe("degradation", "cpu")
    assert len(recipe.seeds) >= 3 and len(set(recipe.seeds)) == len(recipe.seeds)
    assert recipe.data == "digits"  # embedded: the default runs wherever the package is installed
    plain = sorted({s.depth for s in specs_for(recipe) if s.kind == "plain"})
    residual = sorted({s.depth for s in specs_for(recipe) if s.kind == "residual"})
    assert plain == residual and len(plain) >= 2  # every depth has its twin
    assert plain[-1] >= 56 and plain[0] <= 8  # where plain nets fail, against the shallowest net
    assert all(m < recipe.iterations for m in recipe.milestones) and recipe.eval_steps()[-1] == recipe.iterations
    assert default_recipe("degradation", "cuda") == PAPER_CIFAR10  # the paper's setting on CUDA


def test_a_recipe_passes_its_image_size_to_the_data():
    from resnets.studies.recipe import Recipe

    recipe = Recipe(data="digits", image_size=12, depths=(8,))
    assert recipe.train_config(kind="plain", depth=8, seed=0).data.image_size == 12
    assert Recipe(data="digits", depths=(8,)).train_config(kind="plain", depth=8, seed=0).data.image_size is None
