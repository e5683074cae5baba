"""`resnets study all`: every study of the table into one run directory, and the index page that
links each report with its claims, verdicts and wall time."""

from __future__ import annotations

import json
import re

from resnets.cli import main
from resnets.studies.index import STUDIES, StudyEntry, run_all, study_recipe
from resnets.studies.report import Claim, write_report

TINY = {"depths": (8,), "seeds": (0,), "iterations": 3, "batch_size": 32, "train_eval_samples": 100,
        "final_train_eval_samples": 100}


def _links(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)"', html)


def test_index_links_every_report_with_its_claims(tmp_path):
    lines: list[str] = []
    runs = run_all(out_dir=tmp_path, workers=1, quiet=True, changes=TINY, echo=lines.append)
    assert [r.name for r in runs] == list(STUDIES) and all(r.error is None for r in runs)
    index = (tmp_path / "index.html").read_text()
    links = set(_links(index))
    assert links == {f"{name}/report.html" for name in STUDIES}
    assert all((tmp_path / link).is_file() for link in links)
    saved = json.loads((tmp_path / "index.json").read_text())
    for study in saved["studies"]:
        claims = json.loads((tmp_path / study["name"] / "claims.json").read_text())["claims"]
        assert study["claims"] == claims and study["paper"] == STUDIES[study["name"]].paper
        for claim in claims:  # each claim beside the paper's, with its verdict, on the page
            assert claim["verdict"] in ("shown", "not shown", "opposite")
            assert claim["paper"].replace("'", "&#x27;") in index
        assert study["wall_s"] > 0 and study["runs"] == 1
    # resumed: nothing trained again, the wall times add up
    nets = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/nets/*.json")}
    runs = run_all(out_dir=tmp_path, workers=1, quiet=True, changes=TINY, echo=lines.append)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/nets/*.json")} == nets
    assert all(r.runs == 2 for r in runs) and "over 2 runs" in (tmp_path / "index.html").read_text()


def test_a_failing_study_is_on_the_index_and_the_others_still_run(tmp_path):
    def broken(recipe, **options):
        raise FileNotFoundError("no dataset at /nowhere; give --data-dir")

    def quick(recipe, *, out_dir, **options):
        write_report(out_dir, title="quick", sections=[], meta={}, claims=[Claim("c", "p", "m", "shown")])

    table = {"degradation": StudyEntry(broken, "nobody 2000", "fails"),
             "gradients": StudyEntry(quick, "somebody 2001", "works")}
    runs = run_all(out_dir=tmp_path, quiet=True, studies=table, echo=lambda _: None)
    assert runs[0].error == "FileNotFoundError: no dataset at /nowhere; give --data-dir" and runs[1].error is None
    index = (tmp_path / "index.html").read_text()
    assert "failed: FileNotFoundError: no dataset at /nowhere" in index
    assert set(_links(index)) == {"gradients/report.html"}
    assert not (tmp_path / "degradation" / "wall.json").exists()  # a failed study records no wall time


def test_iterations_keep_the_lr_drops_at_the_same_fractions():
    base = study_recipe("identity", "cpu")
    short = study_recipe("identity", "cpu", changes={"iterations": base.iterations // 3, "seeds": (4,)})
    assert short.iterations == base.iterations // 3 and short.seeds == (4,)
    assert [round(m / short.iterations, 1) for m in short.milestones] == \
        [round(m / base.iterations, 1) for m in base.milestones]


def test_bad_options_are_one_line_before_any_study_runs(tmp_path, capsys):
    assert main(["study", "all", "--iterations", "0", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "iterations" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_command_exit_codes_follow_the_failed_studies(tmp_path, capsys, monkeypatch):
    from resnets.studies import index

    def quick(recipe, *, out_dir, **options):
        write_report(out_dir, title="quick", sections=[], meta={}, claims=[])

    def broken(recipe, **options):
        raise ValueError("bad recipe; fix it")

    monkeypatch.setattr(index, "STUDIES", {"gradients": StudyEntry(quick, "p", "d"),
                                           "identity": StudyEntry(broken, "p", "d")})
    assert main(["study", "all", "--out", str(tmp_path / "a"), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "identity: failed: ValueError: bad recipe; fix it" in captured.out
    assert "1 of 2 studies failed" in captured.err and (tmp_path / "a" / "index.html").is_file()
    monkeypatch.setattr(index, "STUDIES", {"identity": StudyEntry(broken, "p", "d")})
    assert main(["study", "all", "--out", str(tmp_path / "b"), "--quiet"]) == 2
    monkeypatch.setattr(index, "STUDIES", {"gradients": StudyEntry(quick, "p", "d")})
    assert main(["study", "all", "--out", str(tmp_path / "c"), "--quiet"]) == 0
    assert f"index: {tmp_path / 'c' / 'index.html'}" in capsys.readouterr().out
