"""tools/check_reports.py: a report and an index opened in headless Chromium, as a person sees them."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from resnets.studies.index import STUDIES, StudyRun, write_index
from resnets.studies.report import Claim, Plot, Section, figure_png_base64, write_report

TOOL = Path(__file__).resolve().parents[2] / "tools" / "check_reports.py"
BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (apt-get install chromium)")


def _tool():
    spec = importlib.util.spec_from_file_location("check_reports", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_reports"] = module
    spec.loader.exec_module(module)
    return module


def _report(folder: Path, *, title: str) -> Path:
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    ax.plot([1, 2, 3], [3, 1, 2], label="a line")
    ax.legend()
    claim = Claim("a claim", "a paper, Fig. 1", "1.00 ± 0.10", "shown")
    html, _ = write_report(folder, title=title, meta={"command": "test"}, claims=[claim],
                           sections=[Section("Plot", text=["words"], images=[Plot("a plot", figure_png_base64(fig),
                                                                                    "look at the line")])])
    return html


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    names = list(STUDIES)[:2]
    for name in names:
        _report(run / name, title=f"{name} study")
    write_index(run, [StudyRun(name=n, out_dir=run / n, wall_s=1.0, runs=1) for n in names], table=STUDIES,
                meta={"command": "test"})
    return run


def test_reports_and_index_pass_and_are_photographed(tmp_path):
    run = _run_dir(tmp_path)
    checks = _tool().check_run(run, shots=tmp_path / "shots")
    assert [c.page.name for c in checks] == ["index.html", "report.html", "report.html"]
    assert all(not c.problems for c in checks), [c.problems for c in checks]
    index = checks[0]
    assert index.links >= 2 * 2  # each report from the table and from its claims' heading
    assert all(c.images == 1 for c in checks[1:])
    assert all(c.screenshot is not None and c.screenshot.stat().st_size > 0 for c in checks)


def test_a_broken_image_a_dead_link_and_a_blank_page_are_found(tmp_path):
    run = _run_dir(tmp_path)
    first = run / list(STUDIES)[0] / "report.html"
    text = first.read_text()
    start = text.index("base64,") + len("base64,")
    first.write_text(text[:start] + "bm90IGEgcG5n" + text[text.index('"', start):])  # "not a png"
    shutil.rmtree(run / list(STUDIES)[1])  # the index now links a report that is gone
    (run / "blank").mkdir()
    (run / "blank" / "report.html").write_text("<!doctype html><html><head></head><body></body></html>")
    checks = {str(c.page.relative_to(run)): c for c in _tool().check_run(run, shots=tmp_path / "shots")}
    assert any("did not decode" in p for p in checks[f"{list(STUDIES)[0]}/report.html"].problems)
    assert any("does not resolve" in p for p in checks["index.html"].problems)
    assert any("blank" in p for p in checks["blank/report.html"].problems)


def test_command_line_exit_codes(tmp_path, capsys):
    tool = _tool()
    assert tool.main([str(tmp_path)]) == 2  # no page at all
    assert "holds no index.html or report.html" in capsys.readouterr().err
    _report(tmp_path / "one", title="one")
    assert tool.main([str(tmp_path), "--shots", str(tmp_path / "shots")]) == 0
    assert "ok: " in capsys.readouterr().out
