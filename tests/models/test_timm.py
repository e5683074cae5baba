"""timm's ResNets that equal ours: same keys and shapes, same outputs (skipped without timm).

They are what `resnets convert` reads as the torchvision format. timm's published weights are
not offered by name: the Hugging Face hub files carry no hash in their names to verify them by.
"""

from __future__ import annotations

import pytest
import torch

from resnets import create_model
from resnets.models.foreign import convert_state

from foreign_nets import randomise

timm = pytest.importorskip("timm")

SAME = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
        "wide_resnet50_2", "wide_resnet101_2")


@pytest.mark.parametrize("name", SAME)
def test_same_keys_and_shapes(name) -> None:
    with torch.device("meta"):
        theirs = timm.create_model(name, pretrained=False).state_dict()
        ours = create_model(name).state_dict()
    assert {k: tuple(v.shape) for k, v in theirs.items()} == {k: tuple(v.shape) for k, v in ours.items()}


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_same_outputs_after_conversion(name) -> None:
    theirs = randomise(timm.create_model(name, pretrained=False), seed=4)
    converted = convert_state(theirs.state_dict())
    assert (converted.format.name, converted.model) == ("torchvision", name)
    ours = create_model(converted.model, **converted.options)
    ours.load_state_dict(converted.state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs(x), rtol=0, atol=1e-5)
