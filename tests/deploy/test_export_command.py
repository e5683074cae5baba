import re
import warnings

import numpy as np
import pytest
import torch
from deploy_helpers import calibrate, write_train_checkpoint

from resnets import create_model
from resnets.cli import main
from resnets.models import save_safetensors

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture
def trained_checkpoint(tmp_path):
    return write_train_checkpoint(tmp_path / "run")


def _difference(out: str) -> float:
    match = re.search(r"max abs difference ([0-9.e+-]+)", out)
    assert match, out
    return float(match.group(1))


def test_export_onnx_from_a_train_checkpoint(trained_checkpoint, tmp_path, capsys) -> None:
    run_dir, model = trained_checkpoint
    out = tmp_path / "model.onnx"
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(out), "--verify"]) == 0
    printed = capsys.readouterr().out
    assert "(N, 1, 16, 16)" in printed  # size and channels from the checkpoint's metadata
    assert _difference(printed) <= 1e-4
    from resnets.deploy import run_onnx

    x = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        expected = model(x).numpy()  # the trained weights, not a fresh model's
    assert np.abs(run_onnx(out, x) - expected).max() <= 1e-4


def test_default_output_sits_next_to_the_checkpoint(trained_checkpoint) -> None:
    run_dir, _ = trained_checkpoint
    assert main(["export", str(run_dir), "--format", "torchscript"]) == 0
    assert (run_dir / "best.pt").is_file()


def test_export_torchscript_from_a_model_name_and_weights(tmp_path, capsys) -> None:
    model = calibrate(create_model("resnet20", num_classes=7), 16)
    weights = tmp_path / "w.safetensors"
    save_safetensors(model.state_dict(), weights)
    out = tmp_path / "m.pt"
    rc = main(["export", "--model", "resnet20", "--weights", str(weights), "--format", "torchscript",
               "--out", str(out), "--input-size", "16", "--verify"])
    assert rc == 0
    assert _difference(capsys.readouterr().out) <= 1e-5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(out))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=1e-5, rtol=1e-5)  # (2, 7): classes from the file


def test_bad_format_is_a_clear_error(trained_checkpoint, capsys) -> None:
    run_dir, _ = trained_checkpoint
    assert main(["export", str(run_dir), "--format", "tflite"]) == 2
    err = capsys.readouterr().err
    assert "tflite" in err and "onnx, openvino, torchscript" in err


def test_bare_weights_as_checkpoint_point_to_model_flag(tmp_path, capsys) -> None:
    path = tmp_path / "w.safetensors"
    save_safetensors(create_model("resnet20").state_dict(), path)
    assert main(["export", str(path), "--format", "onnx"]) == 2
    assert "--model NAME --weights FILE" in capsys.readouterr().err


def test_nothing_to_export_is_a_clear_error(capsys) -> None:
    assert main(["export", "--format", "onnx"]) == 2
    assert "CHECKPOINT" in capsys.readouterr().err


def test_missing_onnxruntime_names_the_extra(trained_checkpoint, tmp_path, monkeypatch, capsys) -> None:
    import sys

    run_dir, _ = trained_checkpoint
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    rc = main(["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--verify"])
    assert rc == 2
    assert "pip install resnets[onnx]" in capsys.readouterr().err


def test_weights_of_another_model_are_refused(tmp_path, capsys) -> None:
    path = tmp_path / "w.safetensors"
    save_safetensors(create_model("resnet20").state_dict(), path)
    assert main(["export", "--model", "resnet32", "--weights", str(path), "--format", "onnx"]) == 2  # missing units
    path2 = tmp_path / "w2.safetensors"
    save_safetensors(create_model("resnet18", num_classes=4).state_dict(), path2)
    assert main(["export", "--model", "resnet20", "--weights", str(path2), "--format", "onnx"]) == 2
    assert "check --model" in capsys.readouterr().err


def test_export_onnx_carries_class_names_normalisation_and_input_size(trained_checkpoint, tmp_path) -> None:
    import json

    import onnx
    import onnxruntime

    run_dir, _ = trained_checkpoint
    out = tmp_path / "model.onnx"
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(out)]) == 0
    stored = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(stored["class_names"]) == ["a", "b", "c"]  # the checkpoint's metadata, as written
    assert (json.loads(stored["mean"]), json.loads(stored["std"])) == ([0.5], [0.25])
    assert json.loads(stored["input_size"]) == [1, 16, 16] and stored["model"] == "resnet20"
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map == stored  # where onnxruntime users read it

    named = tmp_path / "named.onnx"
    assert main(["export", "--model", "resnet20", "--format", "onnx", "--out", str(named), "--input-size", "16"]) == 0
    stored = {p.key: p.value for p in onnx.load(str(named)).metadata_props}
    assert json.loads(stored["input_size"]) == [3, 16, 16] and stored["model"] == "resnet20"
    assert "class_names" not in stored  # a bare model knows no class names
