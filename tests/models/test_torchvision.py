"""Our ImageNet models keep torchvision's state-dict keys and compute the same function."""

import pytest
import torch
import torchvision

from resnets import create_model
from resnets.models.inspect import count_parameters

TV_NAMES = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
            "wide_resnet50_2", "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d"]
HEAVY = {"resnet152", "wide_resnet101_2", "resnext101_32x8d", "resnet101"}


def _randomise_bn(model):
    # non-trivial BN statistics, so that a mismatch in BN wiring would show
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in TV_NAMES])
def test_strict_load_and_equal_outputs(name):
    tv = getattr(torchvision.models, name)(weights=None).eval()
    _randomise_bn(tv)
    with torch.device("meta"):
        ours = create_model(name)
    ours.load_state_dict(tv.state_dict(), strict=True, assign=True)
    ours.eval()
    assert count_parameters(ours) == count_parameters(tv)
    assert list(ours.state_dict()) == list(tv.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        diff = (ours(x) - tv(x)).abs().max().item()
    assert diff <= 1e-5


def test_dilated_bottleneck_matches_torchvision():
    tv = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[False, True, True]).eval()
    ours = create_model("resnet50", output_stride=8).eval()
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x) - tv(x)).abs().max().item() <= 1e-5
