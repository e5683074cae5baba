"""Plain twins: the same networks with every shortcut removed."""

import pytest
import torch

from resnets import create_model, list_models
from resnets.models.blocks import ZeroPadShortcut
from resnets.models.inspect import count_parameters


@pytest.mark.parametrize("name", list_models("plain*"))
def test_plain_nets_hold_no_shortcut_modules(name):
    with torch.device("meta"):
        model = create_model(name)
    units = model.units()
    assert units and all(u.downsample is None and not u.residual for u in units)
    assert not any(isinstance(m, ZeroPadShortcut) for m in model.modules())
    assert not any("downsample" in k for k in model.state_dict())


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110, 1202])
def test_plain_cifar_nets_have_the_option_a_parameter_count(depth):
    with torch.device("meta"):
        assert count_parameters(create_model(f"plain{depth}")) == count_parameters(create_model(f"resnet{depth}"))


def test_plain_twin_computes_a_different_function_with_the_same_weights():
    res = create_model("resnet20").eval()
    plain = create_model("plain20").eval()
    plain.load_state_dict(res.state_dict(), strict=True)  # option A adds no parameters
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(res(x), plain(x))
