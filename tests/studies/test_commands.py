"""The command line: `resnets reproduce he2015-cifar10` on a tiny fake CIFAR-10 folder, and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from resnets.cli import main
from resnets.commands.studies import _recipe, build_args
from resnets.studies.degradation import markdown_rows, summarise
from resnets.studies.reproduce import PAPER_TEST_ERROR, TITLE, he2015_recipe, shortened_note, title_for


def _fake_cifar(root, *, per_class_train: int = 13, per_class_test: int = 2) -> None:
    """train/ and test/ of ten class folders of 32x32 RGB PNGs (130 training images: one batch of 128)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class_train), ("test", per_class_test)):
        for c in range(10):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")


@pytest.mark.slow
def test_reproduce_smoke_on_a_fake_cifar_folder(tmp_path, capsys):
    _fake_cifar(tmp_path / "cifar")
    out = tmp_path / "run"
    code = main(["reproduce", "he2015-cifar10", "--data", str(tmp_path / "cifar"), "--depths", "8",
                 "--iterations", "2", "--workers", "1", "--out", str(out), "--quiet"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["recipe"]["data"] == "imagefolder" and results["recipe"]["iterations"] == 2
    assert results["recipe"]["milestones"] == [1, 2] or results["recipe"]["milestones"] == [1, 1]
    assert {(r["kind"], r["depth"]) for r in results["rows"]} == {("plain", 8), ("residual", 8)}
    net = json.loads((out / "nets" / "residual-8-s0.json").read_text())
    assert net["steps"] == 2 and 0.0 <= net["test_error"] <= 1.0
    summary = (out / "summary.md").read_text()
    assert "paper test error %" in summary
    printed = capsys.readouterr().out
    assert "he2015-cifar10 (shortened run, not a reproduction) report" in printed
    assert "2 of the paper's 64,000 iterations), not a reproduction" in printed
    title = (out / "report.html").read_text().split("<title>")[1].split("</title>")[0]
    assert "a shortened run" in title and "not a reproduction" in title and "reproduced" not in title


def test_paper_numbers_sit_beside_ours():
    rows = summarise({f"{k}{d}": {"kind": k, "depth": d, "seed": 0, "params": 1, "train_error": 0.01, "test_error": 0.09}
                      for k, d in (("plain", 20), ("residual", 20), ("residual", 110))})
    lines = markdown_rows(rows, reference=PAPER_TEST_ERROR)
    assert lines[0].endswith("| paper test error % |")
    assert lines[2].endswith("| 9.00 ± 0.00 | 9.00-9.00 | - |")  # no paper number for plain nets
    assert lines[3].endswith("| 9.00-9.00 | 8.75 |") and lines[4].endswith("| 9.00-9.00 | 6.43 |")


def test_paper_recipe_and_its_shortening():
    full = he2015_recipe(data_dir=None, download=False)
    assert title_for(full) == TITLE and shortened_note(full) == ""
    assert "not a reproduction" in title_for(he2015_recipe(data_dir=None, download=False, iterations=64000 - 1))
    assert (full.iterations, full.milestones, full.batch_size, full.lr) == (64000, (32000, 48000), 128, 0.1)
    assert (full.weight_decay, full.momentum, full.warmup_for(110), full.warmup_for(56)) == (1e-4, 0.9, 400, 0)
    short = he2015_recipe(data_dir=None, download=False, iterations=6400)
    assert short.milestones == (3200, 4800) and short.warmup_for(110) == 40


def test_cuda_selects_the_papers_defaults():
    args = build_args(["study", "degradation"])
    assert _recipe("degradation", args, "cuda").data == "cifar10"
    assert _recipe("degradation", args, "cuda").depths == (20, 32, 44, 56, 110)
    assert _recipe("degradation", args, "cpu").data == "digits"
    shorter = _recipe("degradation", build_args(["study", "degradation", "--iterations", "100"]), "cpu")
    assert shorter.iterations == 100 and all(m < 100 for m in shorter.milestones)


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["study", "degradation", "--depths", "9", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "6n+2" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything is written
    assert main(["reproduce", "he2015-cifar10", "--data", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "not a directory" in capsys.readouterr().err
