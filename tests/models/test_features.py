"""timm's conventions: ``features_only=True`` with ``out_indices``, ``feature_info`` with timm's keys."""

import pytest
import torch

from resnets import create_model


def test_feature_maps_are_the_stem_and_the_stages_of_the_network():
    torch.manual_seed(0)
    full = create_model("resnet18").eval()
    feats = create_model("resnet18", features_only=True).eval()
    assert feats.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith("fc.")}) is not None
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps = feats(x)
        stem = full.relu(full.bn1(full.conv1(x)))
        stages = list(full.forward_stages(x).values())
    assert len(maps) == 5
    assert torch.equal(maps[0], stem)
    for got, want in zip(maps[1:], stages):
        assert torch.equal(got, want)
    assert feats.feature_info.channels() == [64, 64, 128, 256, 512]
    assert feats.feature_info.reduction() == [2, 4, 8, 16, 32]
    assert feats.feature_info.module_name() == ["relu", "layer1", "layer2", "layer3", "layer4"]
    for f, m in zip(feats.feature_info, maps):
        assert m.shape[1] == f["num_chs"] and x.shape[-1] // m.shape[-1] == f["reduction"]


def test_out_indices_pick_maps_and_later_stages_are_not_kept():
    feats = create_model("resnet20", features_only=True, out_indices=(1, 2))
    assert feats.feature_info.channels() == [16, 32] and feats.feature_info.reduction() == [1, 2]
    assert not any(k.startswith("layer3.") for k in feats.state_dict())  # not run, not stored
    maps = feats(torch.randn(2, 3, 32, 32))
    assert [tuple(m.shape) for m in maps] == [(2, 16, 32, 32), (2, 32, 16, 16)]


@pytest.mark.parametrize("bad", [(), (2, 1), (0, 5), (-1,)])
def test_bad_out_indices_are_refused_with_the_range(bad):
    with pytest.raises(ValueError, match=r"0\.\.4"):
        create_model("resnet18", features_only=True, out_indices=bad)


def test_out_indices_without_features_only_is_refused():
    with pytest.raises(ValueError, match="features_only=True"):
        create_model("resnet18", out_indices=(1, 2))


def test_feature_info_of_the_classifier_has_timm_keys_and_ours():
    info = create_model("resnet50").feature_info
    assert [f["num_chs"] for f in info] == [f["channels"] for f in info] == [256, 512, 1024, 2048]
    assert [f["reduction"] for f in info] == [f["stride"] for f in info] == [4, 8, 16, 32]
    assert [f["module"] for f in info] == [f["name"] for f in info]


def test_feature_info_matches_timm_where_installed():
    timm = pytest.importorskip("timm")
    ours = create_model("resnet50", features_only=True)
    theirs = timm.create_model("resnet50", features_only=True, pretrained=False)
    assert ours.feature_info.channels() == theirs.feature_info.channels()
    assert ours.feature_info.reduction() == theirs.feature_info.reduction()


def test_gradient_checkpointing_follows_train_and_eval():
    feats = create_model("resnet20", features_only=True, grad_checkpointing=True)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    feats.train()
    sum(m.sum() for m in feats(x)).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    feats.eval()
    assert feats._net.training is False
