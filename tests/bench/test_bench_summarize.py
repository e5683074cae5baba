"""benchmarks/summarize.py turns saved results into Markdown rows with the ratios."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from resnets.bench import save_json

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "summarize.py"


def test_rows_carry_each_workload_and_its_ratio(result: dict, tmp_path) -> None:
    spec = importlib.util.spec_from_file_location("summarize", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    path = save_json(result, tmp_path / "r20.json")
    rows = module.rows([str(path)])
    assert rows[0].startswith("| run |") and len(rows) == 2 + len(result["results"])
    for row, (workload, r) in zip(rows[2:], result["results"].items()):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == "r20" and cells[6] == workload
        assert cells[9] == f"**{r['ratio']:.2f}**"
