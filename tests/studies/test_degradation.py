"""The degradation study: its table equals the per-network results; the report; resuming."""

from __future__ import annotations

import base64
import json
import re

import pytest

from resnets.studies import degradation
from resnets.studies.degradation import effect, run_degradation, summarise
from resnets.studies.report import pct


def _count_trainings(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = degradation.train_task

    def counting(task, device):
        calls.append(task[0].key)
        return real(task, device)

    monkeypatch.setattr(degradation, "train_task", counting)
    return calls


def test_table_equals_the_per_network_results_and_report_embeds_plots(tmp_path, tiny_recipe):
    out = run_degradation(tiny_recipe, out_dir=tmp_path, workers=1, quiet=True)
    nets = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "nets").glob("*.json")}
    assert sorted(nets) == ["plain-14-s0", "plain-8-s0", "residual-14-s0", "residual-8-s0"]
    table = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert len(table) == 4
    summary = (tmp_path / "summary.md").read_text()
    html = out.report.read_text()
    for row in table:
        net = nets[f"{row['kind']}-{row['depth']}-s0"]
        assert row["train_error"] == net["train_error"] and row["test_error"] == net["test_error"]
        assert net["steps"] == 4 and net["curve"]["step"] == [2, 4]
        cells = (f"| {row['kind']} | {row['depth']} | {net['params']:,} | 1 | {pct(net['train_error'])} | "
                 f"{pct(net['test_error'])} |")
        assert cells in summary
        assert f"<td>{pct(net['test_error'])}</td>" in html
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(b"\x89PNG")


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


def _result(kind: str, depth: int, seed: int, train: float) -> dict:
    return {"kind": kind, "depth": depth, "seed": seed, "params": 1, "train_error": train, "test_error": train + 0.01}


def test_effect_reads_the_papers_claim_from_mean_training_errors():
    results = [_result("plain", 8, 0, 0.01), _result("plain", 44, 0, 0.30), _result("plain", 44, 1, 0.20),
               _result("residual", 8, 0, 0.02), _result("residual", 44, 0, 0.01), _result("residual", 44, 1, 0.03)]
    rows = summarise({f"{r['kind']}{r['depth']}{r['seed']}": r for r in results})
    deep_plain = next(r for r in rows if r["kind"] == "plain" and r["depth"] == 44)
    assert deep_plain["train_error"] == pytest.approx(0.25) and deep_plain["seeds"] == [0, 1]
    e = effect(rows)
    assert e["plain_degrades"] and e["residual_does_not"] and e["shown"]
    results[4]["train_error"] = 0.05  # residual-44 now worse than residual-8
    assert not effect(summarise({str(i): r for i, r in enumerate(results)}))["shown"]
