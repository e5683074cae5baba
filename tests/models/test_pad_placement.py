"""Option A's two placements of the zero channels, as a keyword-only model option."""

from __future__ import annotations

import pytest
import torch

from resnets import create_model
from resnets.models.blocks import ZeroPadShortcut
from resnets.models.inspect import count_parameters
from resnets.train.configio import config_from_mapping


@pytest.mark.parametrize("placement, before", [("after", 0), ("split", 8)])
def test_where_the_old_channels_land(placement, before) -> None:
    pad = ZeroPadShortcut(stride=2, extra_channels=16, placement=placement)
    x = torch.randn(2, 16, 8, 8)
    y = pad(x)  # (2, 32, 4, 4)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, before : before + 16], x[:, :, ::2, ::2], rtol=0, atol=0)
    assert y[:, :before].abs().sum() == 0 and y[:, before + 16 :].abs().sum() == 0


def test_default_is_after_and_the_option_reaches_every_padding_shortcut() -> None:
    default = create_model("resnet32")
    split = create_model("resnet32", pad_placement="split")
    pads = [m for m in split.modules() if isinstance(m, ZeroPadShortcut)]
    assert len(pads) == 2 and {m.placement for m in pads} == {"split"}
    assert {m.placement for m in default.modules() if isinstance(m, ZeroPadShortcut)} == {"after"}
    assert count_parameters(split) == count_parameters(default)
    split.load_state_dict(default.state_dict())  # same tensors, another function
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (split.eval()(x) - default.eval()(x)).abs().max() > 1e-4


def test_bad_placement_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="'after'.*'split'"):
        create_model("resnet20", pad_placement="middle")
    with pytest.raises(ValueError, match="pad_placement"):
        config_from_mapping({"model": {"pad_placement": "middle"}, "train": {"epochs": 1}})
