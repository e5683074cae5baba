"""Weights: torchvision files, safetensors, channel adaptation, refusing code."""

import pickle

import pytest
import torch
import torchvision

from resnets import create_model, load_pretrained
from resnets.models.weights import adapt_input_conv, read_state_dict, save_safetensors


def test_torchvision_file_roundtrip(tmp_path):
    tv = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in tv.state_dict().items()}}, path)
    model = create_model("resnet18").eval()
    report = load_pretrained(model, path)
    assert report == {"missing": [], "unexpected": []}
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), tv(x))


def test_safetensors_roundtrip(tmp_path):
    model = create_model("resnet20").eval()
    path = tmp_path / "w.safetensors"
    save_safetensors(model.state_dict(), path, metadata={"model": "resnet20"})
    other = create_model("resnet20").eval()
    load_pretrained(other, path)
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), k
    assert not list(tmp_path.glob("*.tmp"))


def test_grayscale_stem_from_rgb_weights_sees_gray_as_rgb(tmp_path):
    rgb = create_model("resnet18").eval()
    gray = create_model("resnet18", in_chans=1).eval()
    load_pretrained(gray, rgb.state_dict())
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(gray(x), rgb(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5)
    assert adapt_input_conv(torch.ones(8, 3, 3, 3), 6).sum().item() == pytest.approx(8 * 3 * 9)


def test_head_of_another_size_needs_drop_head():
    src = create_model("resnet20", num_classes=100)
    dst = create_model("resnet20", num_classes=10)
    with pytest.raises(ValueError, match="drop_head=True"):
        load_pretrained(dst, src.state_dict())
    before = dst.fc.weight.clone()
    load_pretrained(dst, src.state_dict(), drop_head=True)
    assert torch.equal(dst.fc.weight, before)
    assert torch.equal(dst.conv1.weight, src.conv1.weight)


def test_wrong_architecture_is_refused():
    with pytest.raises(ValueError, match="same architecture|do not match"):
        load_pretrained(create_model("resnet20"), create_model("resnet32").state_dict())


class _Evil:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_a_pickle_that_runs_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"conv1.weight": _Evil()}, fh)
    with pytest.raises(ValueError, match="weights-only"):
        read_state_dict(path)
    assert not (tmp_path / "PWNED").exists()


def test_truncated_safetensors_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    save_safetensors(create_model("resnet20").state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        read_state_dict(path)
