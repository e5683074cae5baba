"""A zeroed residual branch makes its unit exactly the identity, so extra units cannot hurt."""

import copy

import pytest
import torch
from torch import nn

from resnets import create_model
from resnets.models.blocks import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck

UNITS = [
    (BasicBlock, 16, 16),
    (Bottleneck, 64, 16),  # 64 -> 16 -> 64
    (PreActBasicBlock, 16, 16),
    (PreActBottleneck, 64, 16),
]


@pytest.mark.parametrize("unit,inplanes,planes", UNITS, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_zeroed_branch_is_exact_identity(unit, inplanes, planes, mode):
    block = unit(inplanes, planes)
    for m in block.modules():  # non-trivial weights everywhere else
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
    block.zero_init_last()
    block.train(mode == "train")
    x = torch.randn(4, inplanes, 8, 8)
    if not unit.preact:
        x = x.relu()  # post-activation units end in a ReLU: identity on non-negative input
    with torch.no_grad():
        y = block(x)
    assert torch.equal(y, x)


def test_plain_unit_with_zeroed_branch_is_not_identity():
    block = BasicBlock(16, 16, residual=False)
    block.zero_init_last()
    x = torch.rand(2, 16, 8, 8) + 0.1
    with torch.no_grad():
        assert torch.equal(block(x), torch.zeros_like(x))


@pytest.mark.parametrize("name", ["resnet20", "preact_resnet20", "resnet18", "resnet50"])
def test_inserting_zeroed_units_leaves_outputs_unchanged(name):
    model = create_model(name, num_classes=5).eval()
    for m in model.modules():  # a "trained-looking" network with non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    deeper = copy.deepcopy(model)
    for stage in deeper.stages():
        last = stage[-1]
        for _ in range(2):
            extra = copy.deepcopy(last)
            for p in extra.parameters():
                p.data.normal_(0, 0.5)  # arbitrary weights: only the zeroed last layer matters
            extra.zero_init_last()
            stage.append(extra)
    assert len(deeper.units()) == len(model.units()) + 2 * len(model.stage_names)
    with torch.no_grad():
        after = deeper.eval()(x)
    assert torch.equal(after, before)


def test_zero_init_last_option_makes_every_unit_start_as_identity():
    model = create_model("resnet20", zero_init_last=True)
    assert all(u.last_layer().weight.abs().sum() == 0 for u in model.units())
    pre = create_model("preact_resnet20", zero_init_last=True)
    assert all(u.conv2.weight.abs().sum() == 0 for u in pre.units())
