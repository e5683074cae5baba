import copy

import pytest
import torch
from deploy_helpers import FAMILIES, build, calibrate, small_bottleneck
from torch import nn

from resnets import create_model
from resnets.deploy import fold_bn
from resnets.deploy.fold import count_batchnorms, fold_bn_, fold_conv_bn


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_folded_model_matches_eval_model(family: str) -> None:
    model, side = build(family)
    folded = fold_bn(model)
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        expected, got = model(x), folded(x)
    assert expected.abs().max() > 1e-2  # a real signal, not all zeros
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not folded.training


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_folding_removes_the_foldable_batchnorms(family: str) -> None:
    model, _ = build(family)
    before = count_batchnorms(model)
    folded = fold_bn(model)
    left = count_batchnorms(folded)
    if getattr(model, "preact", False):
        # per unit only bn1 stays; plus the final BN of the network
        assert left == len(model.units()) + 1
    else:
        assert left == 0
    assert count_batchnorms(model) == before  # the original is untouched
    convs = [m for m in folded.modules() if isinstance(m, nn.Conv2d)]
    with_bias = sum(m.bias is not None for m in convs)
    assert with_bias == before - left


def test_folding_is_exact_in_float64() -> None:
    model = calibrate(small_bottleneck(), 32).double()
    folded = fold_bn(model)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-11, rtol=1e-11)


def test_folded_copy_keeps_the_model_interface() -> None:
    model, side = build("basic_resnet18")
    folded = fold_bn(model)
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        stages = folded.forward_stages(x)
        ref = model.forward_stages(x)
    for name in ref:
        torch.testing.assert_close(stages[name], ref[name], atol=1e-4, rtol=1e-4)  # unpooled maps, larger values


def test_fold_in_place_refuses_training_mode() -> None:
    model = create_model("resnet20").train()
    with pytest.raises(ValueError, match="eval"):
        fold_bn_(model)


def test_bn_without_running_stats_is_refused() -> None:
    conv, bn = nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4, track_running_stats=False)
    with pytest.raises(ValueError, match="fold=False"):
        fold_conv_bn(conv, bn)


def test_fold_conv_bn_keeps_an_existing_conv_bias() -> None:
    conv, bn = nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4)
    calibrate(nn.Sequential(conv, bn), 8)
    fused = fold_conv_bn(conv, bn)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), bn(conv(x)), atol=1e-5, rtol=1e-5)


def test_folding_twice_changes_nothing() -> None:
    model, side = build("cifar_option_B")
    once = fold_bn(model)
    twice = fold_bn(copy.deepcopy(once))
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        assert torch.equal(once(x), twice(x))
