"""Weights by name: the table, and create_model(weights=...) / predict / finetune against a loopback server."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from loopback import hashed_name, serving
from PIL import Image

from resnets import create_model
from resnets.cli import main
from resnets.data import preprocess
from resnets.models import get_entry
from resnets.models.pretrained import (
    PretrainedWeights,
    default_tag,
    find_weights,
    get_weights,
    list_weights,
    register_weights,
    unregister_weights,
)
from resnets.train.finetune import load_finetune_source


def test_every_entry_is_well_formed() -> None:
    entries = list_weights()
    assert len({e.name for e in entries}) == len(entries) and len({e.url for e in entries}) == len(entries)
    for e in entries:
        url = urlparse(e.url)
        assert url.scheme == "https" and url.netloc and url.path.endswith("/" + e.filename)
        assert re.fullmatch(r"[a-z0-9_]+-[0-9a-f]{8}\.pth", e.filename), e.filename
        assert e.filename.startswith(e.model + "-") and e.hash_prefix == e.filename[-12:-4]
        assert get_entry(e.model).family == "imagenet" and re.fullmatch(r"IMAGENET1K_V[12]", e.tag)
        assert 0 < e.top1 < e.top5 < 100 and e.crop <= e.resize and e.num_classes == 1000
        assert len(e.mean) == len(e.std) == 3


def test_each_model_with_weights_has_a_default_and_v2_where_published() -> None:
    models = {e.model for e in list_weights()}
    assert models == {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                      "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2"}
    for model in models:
        tags = {e.tag for e in list_weights() if e.model == model}
        assert default_tag(model) == max(tags)  # V2 where it exists, as torchvision's DEFAULT
    assert get_weights("resnet50", "DEFAULT").tag == "IMAGENET1K_V2"
    assert find_weights("resnet50.IMAGENET1K_V1").filename == "resnet50-0676ba61.pth"
    assert find_weights("runs/resnet50.safetensors") is None and find_weights("resnet20.DEFAULT") is None


def test_table_agrees_with_the_installed_torchvision() -> None:
    tv = pytest.importorskip("torchvision")
    for e in list_weights():
        enum = tv.models.get_model_weights(e.model)
        w = enum[e.tag]
        t = w.transforms()
        assert (w.url, list(t.resize_size), list(t.crop_size)) == (e.url, [e.resize], [e.crop])
        assert w.meta["_metrics"]["ImageNet-1K"] == {"acc@1": e.top1, "acc@5": e.top5}
        assert (tuple(t.mean), tuple(t.std)) == (e.mean, e.std)
        assert enum.DEFAULT.name == default_tag(e.model)


def test_pretrained_true_and_weights_together_is_an_error() -> None:
    with pytest.raises(ValueError, match="not both"):
        create_model("resnet18", weights="DEFAULT", pretrained=True)
    with pytest.raises(ValueError, match="no published weights for resnet20"):
        create_model("resnet20", pretrained=True)
    with pytest.raises(ValueError, match="variant"):
        create_model("resnet50", weights="IMAGENET1K_V2", variant="v1")


@pytest.fixture
def published(tmp_path, monkeypatch):
    """resnet20 weights published under a test tag on a loopback server."""
    monkeypatch.setenv("RESNETS_HOME", str(tmp_path / "resnets"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    source = create_model("resnet20").eval()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.05 * torch.randn_like(p))
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    payload = buffer.getvalue()
    name = hashed_name("resnet20", payload)
    with serving() as server:
        server.files[name] = payload
        entry = PretrainedWeights(
            model="resnet20", tag="TEST_V1", url=server.url("ok", name), labels="cifar10", num_classes=10,
            resize=32, crop=32, top1=91.0, top5=99.0, source="test", recipe="-", mean=(0.5, 0.5, 0.5),
            std=(0.25, 0.25, 0.25), shortcut="A",
        )
        register_weights(entry)
        try:
            yield source, entry, server
        finally:
            unregister_weights(entry.name)


def test_weights_by_name_download_verify_and_load(published) -> None:
    source, entry, server = published
    x = torch.randn(2, 3, 32, 32)
    for model in (create_model("resnet20", weights="TEST_V1"), create_model("resnet20", pretrained=True)):
        with torch.no_grad():
            torch.testing.assert_close(model.eval()(x), source(x), rtol=0, atol=0)
    assert server.requests[entry.filename] == 1
    fresh = create_model("resnet20", weights="TEST_V1", num_classes=3)  # a new head, the body loaded
    torch.testing.assert_close(fresh.conv1.weight, source.conv1.weight)
    assert fresh.fc.out_features == 3
    features = create_model("resnet20", weights="TEST_V1", features_only=True, out_indices=[3])
    with torch.no_grad():
        torch.testing.assert_close(features.eval()(x)[-1], source.forward_stages(x)["layer3"], rtol=0, atol=0)


def test_the_weights_class_count_is_the_model_s_unless_asked_otherwise(published, tmp_path, monkeypatch) -> None:
    """Published weights with 1000 ImageNet classes on a CIFAR body: the head follows the weights."""
    _, entry, server = published
    wide = create_model("resnet20", num_classes=1000)
    buffer = io.BytesIO()
    torch.save(wide.state_dict(), buffer)
    name = hashed_name("resnet20_in1k", buffer.getvalue())
    server.files[name] = buffer.getvalue()
    other = PretrainedWeights(model="resnet20", tag="TEST_IN1K", url=server.url("ok", name), labels="imagenet-1k",
                              num_classes=1000, resize=40, crop=32, top1=1.0, top5=2.0, source="test", recipe="-",
                              shortcut="A")
    register_weights(other)
    try:
        model = create_model("resnet20", weights="TEST_IN1K")
        assert model.fc.out_features == 1000
        torch.testing.assert_close(model.fc.weight, wide.fc.weight)
        assert create_model("resnet20", weights="TEST_IN1K", num_classes=7).fc.out_features == 7
    finally:
        unregister_weights(other.name)


def test_predict_with_weights_by_name(published, tmp_path, capsys) -> None:
    source, entry, _ = published
    image = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(image)
    assert main(["predict", str(image), "--weights", entry.name, "--topk", "10", "--json", "--precision", "fp32"]) == 0
    got = {t["label"]: t["prob"] for t in json.loads(capsys.readouterr().out)[0]["topk"]}
    x = preprocess(Image.open(image), image_size=32, in_chans=3, mean=entry.mean, std=entry.std)[None]
    with torch.no_grad():
        probs = source(x).softmax(1)[0]
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    np.testing.assert_allclose([got[n] for n in names], probs.numpy(), atol=1e-5)


def test_finetune_source_by_name(published) -> None:
    source, entry, _ = published
    model = create_model("resnet20", num_classes=4)
    load_finetune_source(model, entry.name)
    torch.testing.assert_close(model.layer3[0].conv2.weight, source.layer3[0].conv2.weight)


def test_weights_command_lists_and_downloads(published, capsys) -> None:
    _, entry, _ = published
    assert main(["weights", "resnet20"]) == 0
    listed = capsys.readouterr().out
    assert entry.name in listed and "(DEFAULT)" in listed
    assert main(["weights", "download", entry.name]) == 0
    path = capsys.readouterr().out.split(": ", 1)[1].strip()
    assert path.endswith(entry.filename)
    assert main(["weights", "resnet20"]) == 0
    assert path in capsys.readouterr().out
    assert main(["weights", "download", "resnet20.NOPE"]) == 2


def test_imagenet_class_names_come_from_torchvision_with_a_fallback(monkeypatch) -> None:
    from resnets.models.labels import class_names, class_names_or_indices

    pytest.importorskip("torchvision")
    names = class_names("imagenet-1k")
    assert len(names) == 1000 == len(set(names)) and names[0] == "tench"
    monkeypatch.setitem(__import__("sys").modules, "torchvision.models._meta", None)  # as if missing
    numbered, why = class_names_or_indices("imagenet-1k", 1000)
    assert numbered[:2] == ["0", "1"] and "torchvision" in why and "\n" not in why
