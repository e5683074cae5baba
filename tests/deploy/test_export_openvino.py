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
    # the IR carries what a deployment needs besides the graph, as the ONNX file does
    import json

    import openvino as ov

    from resnets.io.checkpoint import read_metadata, resolve_checkpoint

    meta = read_metadata(resolve_checkpoint(run_dir))
    ir = ov.Core().read_model(str(out))
    assert json.loads(ir.get_rt_info(["resnets", "class_names"]).astype(str)) == json.loads(meta["classes"])
    assert json.loads(ir.get_rt_info(["resnets", "mean"]).astype(str)) == json.loads(meta["mean"])
    assert json.loads(ir.get_rt_info(["resnets", "input_size"]).astype(str))[0] == int(meta["in_chans"])


def test_export_openvino_without_it_names_the_extra(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)
    run_dir, _ = write_train_checkpoint(tmp_path / "run")
    assert main(["export", str(run_dir), "--format", "openvino", "--out", str(tmp_path / "m.xml")]) == 2
    err = capsys.readouterr().err
    assert "pip install resnets[openvino]" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("m.*"))
