"""`resnets export --format openvino`: OpenVINO IR (.xml + .bin) that runs like the model."""

import re
import sys

import pytest
from deploy_helpers import write_train_checkpoint

from resnets.cli import main
from resnets.deploy.backends import available


def test_export_openvino_writes_ir_that_matches_the_model(tmp_path, capsys) -> None:
    if not available("openvino"):
        pytest.skip("openvino is not installed")
    run_dir, _ = write_train_checkpoint(tmp_path / "run")
    out = tmp_path / "ir" / "model.xml"
    assert main(["export", str(run_dir), "--format", "openvino", "--out", str(out), "--verify"]) == 0
    text = capsys.readouterr().out
    assert out.is_file() and out.with_suffix(".bin").is_file()
    match = re.search(r"max abs difference ([0-9.e+-]+)", text)
    assert match and float(match.group(1)) < 1e-4, text


def test_export_openvino_without_it_names_the_extra(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)
    run_dir, _ = write_train_checkpoint(tmp_path / "run")
    assert main(["export", str(run_dir), "--format", "openvino", "--out", str(tmp_path / "m.xml")]) == 2
    err = capsys.readouterr().err
    assert "pip install resnets[openvino]" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("m.*"))
