"""`resnets convert`: one converted file that predict, export, eval and finetune.source all accept."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from foreign_nets import AkamasterResNet, ChenyaofoResNet, randomise
from PIL import Image

from resnets import create_model
from resnets.cli import main
from resnets.data import preprocess
from resnets.models.labels import CIFAR10
from resnets.train.finetune import load_finetune_source


@pytest.fixture
def akamaster(tmp_path):
    net = randomise(AkamasterResNet(3))
    src = tmp_path / "resnet20-0123abcd.th"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}, "best_prec1": 91.7}, src)
    return net, src


def _images(tmp_path, n: int = 3) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_convert_then_predict_gives_the_source_model_s_answer(tmp_path, akamaster, capsys) -> None:
    net, src = akamaster
    dst = tmp_path / "converted.safetensors"
    assert main(["convert", str(src), str(dst)]) == 0
    out = capsys.readouterr().out
    assert "akamaster format -> resnet20" in out and "pad_placement=split" in out
    paths = _images(tmp_path)
    assert main(["predict", *paths, "--checkpoint", str(dst), "--topk", "10", "--json", "--precision", "fp32"]) == 0
    rows = json.loads(capsys.readouterr().out)
    x = torch.stack([preprocess(Image.open(p), image_size=32, in_chans=3, mean=(0.485, 0.456, 0.406),
                                std=(0.229, 0.224, 0.225)) for p in paths])  # trainer.py's normalisation
    with torch.no_grad():
        probs = net(x).softmax(1)
    for row, p in zip(rows, probs):
        got = {t["label"]: t["prob"] for t in row["topk"]}
        np.testing.assert_allclose([got[c] for c in CIFAR10], p.numpy(), atol=1e-5)


def test_converted_file_exports(tmp_path, akamaster, capsys) -> None:
    _, src = akamaster
    dst = tmp_path / "c.safetensors"
    assert main(["convert", str(src), str(dst)]) == 0
    assert main(["export", str(dst), "--format", "torchscript", "--out", str(tmp_path / "c.pt"), "--verify"]) == 0
    assert "max abs difference" in capsys.readouterr().out


def _write_cifar10(folder) -> dict:
    inner = folder / "cifar10" / "cifar-10-batches-py"
    inner.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"labels": [int(v) for v in np.arange(30) % 10], "data": rng.integers(0, 256, (30, 3072), dtype=np.uint8)}
        (inner / name).write_bytes(pickle.dumps(batch))
    (inner / "batches.meta").write_bytes(pickle.dumps({"label_names": list(CIFAR10)}))
    return batch  # the test batch


def test_converted_file_evaluates_with_the_source_s_normalisation(tmp_path, akamaster, monkeypatch, capsys) -> None:
    net, src = akamaster
    monkeypatch.setenv("RESNETS_DATA", str(tmp_path / "data"))
    test = _write_cifar10(tmp_path / "data")
    dst = tmp_path / "c.safetensors"
    assert main(["convert", str(src), str(dst)]) == 0
    capsys.readouterr()
    assert main(["eval", str(dst), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    x = torch.from_numpy(test["data"]).float().view(-1, 3, 32, 32) / 255  # (30, 3, 32, 32)
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(net(x), torch.tensor(test["labels"])).item()
    assert result["samples"] == 30
    assert result["loss"] == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_finetune_source_takes_the_foreign_file_and_the_converted_one(tmp_path, akamaster) -> None:
    net, src = akamaster
    model = create_model("resnet20", num_classes=10, pad_placement="split")
    load_finetune_source(model, src)  # converted on the fly
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), net(x), rtol=0, atol=1e-5)
    dst = tmp_path / "c.safetensors"
    assert main(["convert", str(src), str(dst)]) == 0
    other = create_model("resnet20", num_classes=5, pad_placement="split")
    load_finetune_source(other, dst)
    torch.testing.assert_close(other.conv1.weight, model.conv1.weight)


def test_finetune_refuses_the_other_padding_placement(tmp_path, akamaster) -> None:
    _, src = akamaster
    with pytest.raises(ValueError, match="model.pad_placement=split"):
        load_finetune_source(create_model("resnet20", num_classes=10), src)
    dst = tmp_path / "c.safetensors"
    assert main(["convert", str(src), str(dst)]) == 0
    with pytest.raises(ValueError, match="model.pad_placement=split"):  # the converted file says so too
        load_finetune_source(create_model("resnet20", num_classes=10), dst)
    with pytest.raises(ValueError, match="model.shortcut=A"):
        load_finetune_source(create_model("resnet20", num_classes=10, shortcut="B"), src)


def test_convert_errors_are_one_line_with_exit_2(tmp_path, capsys) -> None:
    odd = tmp_path / "odd.pth"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, odd)
    assert main(["convert", str(odd), str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "fits no known format" in err
    assert main(["convert", str(odd), str(tmp_path / "x.pth")]) == 2
    assert ".safetensors" in capsys.readouterr().err
    assert not list(tmp_path.glob("x*"))


def test_from_names_the_format_when_keys_are_ambiguous(tmp_path, capsys) -> None:
    net = randomise(ChenyaofoResNet(3, num_classes=100), seed=3)
    src = tmp_path / "c100.pt"
    torch.save(net.state_dict(), src)
    assert main(["convert", str(src), str(tmp_path / "a.safetensors"), "--from", "chenyaofo"]) == 0
    assert "chenyaofo format -> resnet20" in capsys.readouterr().out
    assert main(["convert", str(src), str(tmp_path / "b.safetensors"), "--from", "nope"]) == 2
    assert "known formats" in capsys.readouterr().err


def test_a_truncated_source_is_one_line_and_writes_nothing(tmp_path, akamaster, capsys) -> None:
    _, src = akamaster
    cut = tmp_path / "cut.th"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    assert main(["convert", str(cut), str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cut.th" in err
    assert not list(tmp_path.glob("*x.safetensors*"))


def test_a_recipe_fine_tunes_from_the_foreign_file(tmp_path, akamaster) -> None:
    from resnets.train import config_from_mapping, run

    net, src = akamaster
    recipe = {
        "model": {"name": "resnet20", "shortcut": "A", "pad_placement": "split"},
        "data": {"name": "synthetic", "synthetic_shape": [3, 32, 32], "synthetic_classes": 4, "synthetic_size": 64,
                 "batch_size": 16, "val_fraction": 0.25},
        "train": {"iterations": 2, "eval_every": 0, "threads": 1, "tensorboard": False,
                  "out_dir": str(tmp_path / "runs"), "name": "ft"},
        "finetune": {"source": str(src), "freeze_stages": 3},
    }
    model = run(config_from_mapping(recipe), device="cpu", quiet=True).model
    own, theirs = model.state_dict(), net.state_dict()
    assert model.fc.out_features == 4
    assert all(torch.equal(own[k], theirs[k]) for k in theirs if not k.startswith("linear."))  # frozen body
