"""Foreign checkpoints: each format, saved as its source saves it, converted, equal outputs."""

from __future__ import annotations

import json

import pytest
import torch
from foreign_nets import AkamasterResNet, ChenyaofoResNet, randomise

from resnets import create_model
from resnets.io.checkpoint import apply_weights, load_checkpoint
from resnets.io.runs import model_from_metadata
from resnets.models.foreign import convert_state, detect_format
from resnets.models.weights import read_state_dict
from resnets.train.convert import convert_checkpoint


def _akamaster_file(tmp_path, *, n: int = 3, option: str = "A"):
    net = randomise(AkamasterResNet(n, option=option))
    state = {f"module.{k}": v for k, v in net.state_dict().items()}  # saved from nn.DataParallel
    path = tmp_path / f"resnet{6 * n + 2}.th"
    torch.save({"state_dict": state, "best_prec1": 91.25}, path)
    return net, path


def _chenyaofo_file(tmp_path, *, n: int = 3, num_classes: int = 10):
    net = randomise(ChenyaofoResNet(n, num_classes=num_classes), seed=1)
    path = tmp_path / f"cifar{num_classes}_resnet{6 * n + 2}.pt"
    torch.save(net.state_dict(), path)
    return net, path


def _torchvision_file(tmp_path):
    tv = pytest.importorskip("torchvision")
    net = randomise(tv.models.resnet18(weights=None), seed=2)
    path = tmp_path / "resnet18_tv.pth"
    torch.save(net.state_dict(), path)
    return net, path


def _same_outputs(foreign: torch.nn.Module, converted_path, side: int) -> torch.nn.Module:
    ckpt = load_checkpoint(converted_path, with_state=False)
    ours = model_from_metadata(ckpt.metadata)
    apply_weights(ours, ckpt, path=converted_path)
    x = torch.randn(3, 3, side, side, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), foreign(x), rtol=0, atol=1e-5)
    return ours


@pytest.mark.parametrize("n", [3, 5])
def test_akamaster_option_a_converts_with_split_padding(tmp_path, n) -> None:
    net, src = _akamaster_file(tmp_path, n=n)
    result = convert_checkpoint(src, tmp_path / "out.safetensors")
    assert result.converted.format.name == "akamaster"
    assert result.converted.model == f"resnet{6 * n + 2}"
    assert result.converted.options["shortcut"] == "A" and result.converted.options["pad_placement"] == "split"
    _same_outputs(net, result.path, 32)
    meta = load_checkpoint(result.path, with_state=False).metadata
    assert json.loads(meta["mean"]) == [0.485, 0.456, 0.406]  # trainer.py's ImageNet statistics
    assert json.loads(meta["classes"])[:2] == ["airplane", "automobile"]
    origin = json.loads(meta["converted_from"])
    assert origin["format"] == "akamaster" and origin["file"] == src.name and len(origin["sha256"]) == 64


def test_the_other_padding_placement_gives_other_outputs(tmp_path) -> None:
    """The test above can fail: the same tensors in the appended-zeros placement answer differently."""
    net, src = _akamaster_file(tmp_path)
    conv = convert_state(read_state_dict(src))
    wrong = create_model(conv.model, num_classes=10, shortcut="A", pad_placement="after")
    wrong.load_state_dict(conv.state)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (wrong.eval()(x) - net(x)).abs().max() > 1e-3


def test_akamaster_option_b(tmp_path) -> None:
    net, src = _akamaster_file(tmp_path, option="B")
    result = convert_checkpoint(src, tmp_path / "b.safetensors")
    assert result.converted.options["shortcut"] == "B"
    _same_outputs(net, result.path, 32)


@pytest.mark.parametrize("num_classes, mean0", [(10, 0.4914), (100, 0.5070)])
def test_chenyaofo_converts(tmp_path, num_classes, mean0) -> None:
    net, src = _chenyaofo_file(tmp_path, num_classes=num_classes)
    result = convert_checkpoint(src, tmp_path / "c.safetensors")
    assert result.converted.format.name == "chenyaofo"
    assert (result.converted.model, result.converted.options["shortcut"]) == ("resnet20", "B")
    _same_outputs(net, result.path, 32)
    meta = load_checkpoint(result.path, with_state=False).metadata
    assert json.loads(meta["mean"])[0] == mean0 and len(json.loads(meta["classes"])) == num_classes


def test_torchvision_converts(tmp_path) -> None:
    net, src = _torchvision_file(tmp_path)
    result = convert_checkpoint(src, tmp_path / "tv.safetensors")
    assert (result.converted.format.name, result.converted.model) == ("torchvision", "resnet18")
    _same_outputs(net, result.path, 64)


def test_old_files_without_bn_counters_convert(tmp_path) -> None:
    """As written by torch < 0.4.1: the legacy (non-zip) serialisation, no BN step counters."""
    net, src = _akamaster_file(tmp_path)
    blob = torch.load(src, weights_only=True)
    blob["state_dict"] = {k: v for k, v in blob["state_dict"].items() if not k.endswith("num_batches_tracked")}
    torch.save(blob, src, _use_new_zipfile_serialization=False)
    _same_outputs(net, convert_checkpoint(src, tmp_path / "o.safetensors").path, 32)


def test_unknown_format_is_one_line_naming_what_was_found(tmp_path) -> None:
    path = tmp_path / "odd.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3), "head.bias": torch.zeros(3)}, path)
    with pytest.raises(ValueError) as err:
        convert_checkpoint(path, tmp_path / "x.safetensors")
    message = str(err.value)
    assert "\n" not in message and "2 tensors" in message and "encoder" in message
    assert all(name in message for name in ("akamaster", "chenyaofo", "torchvision"))
    assert not (tmp_path / "x.safetensors").exists()


def test_detection_needs_the_format_s_keys() -> None:
    assert detect_format({"linear.weight": torch.zeros(10, 64)}) is None


def test_a_depth_we_do_not_have_is_named(tmp_path) -> None:
    net = randomise(AkamasterResNet(2))  # 14 layers: not one of the paper's depths
    path = tmp_path / "resnet14.th"
    torch.save({"state_dict": net.state_dict()}, path)
    with pytest.raises(ValueError, match="akamaster checkpoint .*6 residual units.* fits none of our cifar models"):
        convert_checkpoint(path, tmp_path / "x.safetensors")
