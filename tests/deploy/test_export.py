import sys
import warnings

import numpy as np
import pytest
import torch

from resnets import create_model
from resnets.deploy import export_onnx, export_torchscript, run_onnx
from resnets.deploy import export as export_mod

from deploy_helpers import build

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

# every family of the brief: basic, bottleneck, pre-activation (basic and bottleneck), option A, plain
ONNX_FAMILIES = ["basic_resnet18", "bottleneck", "preact_resnet20", "preact_bottleneck_cifar", "cifar_option_A",
                 "plain20"]


def _batch_dim(path) -> object:
    dim = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_param or dim.dim_value


@pytest.mark.parametrize("family", ONNX_FAMILIES)
def test_onnx_matches_pytorch_with_a_dynamic_batch(family: str, tmp_path) -> None:
    model, side = build(family)
    path = export_onnx(model, tmp_path / f"{family}.onnx", input_size=(3, side, side))  # traced at batch 2
    onnx.checker.check_model(str(path))
    assert _batch_dim(path) == "batch"
    x = torch.randn(5, 3, side, side)
    with torch.no_grad():
        expected = model(x).numpy()
    got = run_onnx(path, x)
    assert got.shape == expected.shape == (5, model.num_classes)
    assert np.abs(got - expected).max() <= 1e-4


def test_onnx_folding_removes_batchnorm_nodes(tmp_path) -> None:
    model, side = build("cifar_option_B")
    folded = export_onnx(model, tmp_path / "f.onnx", input_size=(side, side))
    kept = export_onnx(model, tmp_path / "k.onnx", input_size=(side, side), fold=False)
    ops = lambda p: [n.op_type for n in onnx.load(str(p)).graph.node]  # noqa: E731
    # the exporter folds eval BNs itself in some torch versions; ours must hold none either way
    assert "BatchNormalization" not in ops(folded)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())  # 19 + 2 projections
    assert ops(folded).count("Conv") == ops(kept).count("Conv") == convs == 21
    x = torch.randn(2, 3, side, side)
    np.testing.assert_allclose(run_onnx(folded, x), run_onnx(kept, x), atol=1e-4)


def test_static_batch_fixes_the_batch_dimension(tmp_path) -> None:
    model, side = build("plain20")
    path = export_onnx(model, tmp_path / "s.onnx", input_size=(3, side, side), dynamic_batch=False)
    assert _batch_dim(path) == 2
    with pytest.raises(Exception):
        run_onnx(path, torch.randn(5, 3, side, side))


def test_torchscript_round_trip(tmp_path) -> None:
    model, side = build("cifar_option_A")
    path = export_torchscript(model, tmp_path / "m.pt", input_size=(3, side, side))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path))
    assert isinstance(loaded, torch.jit.ScriptModule)
    x = torch.randn(3, 3, side + 8, side + 8)  # another batch and size than traced
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=1e-5, rtol=1e-5)
    names = {n for n, _ in loaded.named_modules()}
    assert "bn1" in names and "layer1.0.bn1" in names  # the module tree is kept; its BNs are Identity


def test_export_leaves_the_model_untouched(tmp_path) -> None:
    model = create_model("resnet20").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, tmp_path / "m.onnx", input_size=(3, 16, 16))
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_dynamo_switch_follows_the_signature(monkeypatch) -> None:
    assert export_mod._onnx_export_kwargs() == {"dynamo": False}  # torch >= 2.5 has the switch

    def export_without_dynamo(model, args, f, *, input_names=None, output_names=None, dynamic_axes=None,
                              opset_version=None):  # the torch 2.4 signature (abridged)
        raise AssertionError("not called")

    monkeypatch.setattr(torch.onnx, "export", export_without_dynamo)
    assert export_mod._onnx_export_kwargs() == {}


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    with pytest.raises(ImportError, match=r"pip install resnets\[onnx\]"):
        export_onnx(create_model("resnet20"), tmp_path / "m.onnx", input_size=(3, 16, 16))


def test_bad_input_size_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="input_size"):
        export_onnx(create_model("resnet20"), tmp_path / "m.onnx", input_size=(3, 16, 16, 1))
    with pytest.raises(ValueError, match="at least 32x32"):
        export_torchscript(create_model("resnet18"), tmp_path / "m.pt", input_size=(3, 16, 16))


@pytest.mark.slow
def test_resnet50_onnx_matches_pytorch(tmp_path) -> None:
    """The real bottleneck network (53 convs), 32x32 input, dynamic batch."""
    torch.manual_seed(0)
    model = create_model("resnet50", num_classes=10).eval()
    path = export_onnx(model, tmp_path / "r50.onnx", input_size=(3, 32, 32))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(run_onnx(path, x) - expected).max() <= 1e-4


def test_onnx_carries_class_names_normalisation_and_input_size(tmp_path) -> None:
    import json

    import onnxruntime as ort

    from resnets.deploy.export import deploy_metadata

    model, side = build("plain20")
    names = ["cat", "dög", "class with spaces"] + [f"c{i}" for i in range(7)]
    meta = deploy_metadata(input_size=(3, side, side), class_names=names, mean=(0.49, 0.48, 0.45),
                           std=(0.25, 0.24, 0.26), model_name="plain20")
    path = export_onnx(model, tmp_path / "m.onnx", input_size=(3, side, side), metadata=meta)
    stored = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(stored["class_names"]) == names
    assert json.loads(stored["mean"]) == [0.49, 0.48, 0.45] and json.loads(stored["std"]) == [0.25, 0.24, 0.26]
    assert json.loads(stored["input_size"]) == [3, side, side] and stored["model"] == "plain20"
    # onnxruntime reads the same map, and the graph still runs
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert json.loads(session.get_modelmeta().custom_metadata_map["class_names"]) == names
    assert run_onnx(path, torch.randn(2, 3, side, side)).shape == (2, 10)
