"""Networks without normalisation: norm="none", SkipInit's branch gate, Fixup."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnets import create_model
from resnets.models.blocks import BasicBlock, FixupBasicBlock, ScalarBias


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("options", [{"norm": "none"}, {"norm": "none", "branch_gate": True},
                                     {"norm": "none", "fixup": True}, {"branch_gate": True}])
@pytest.mark.parametrize("name", ["cifar_resnet14", "resnet18"])
def test_shapes_forward_backward(name, options):
    model = create_model(name, num_classes=7, **options)
    x = torch.randn(2, 3, 32, 32)  # (N, C, H, W)
    out = model(x)
    assert out.shape == (2, 7)
    out.float().sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_no_norm_removes_every_batchnorm():
    model = create_model("cifar_plain20", norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    bn = create_model("cifar_plain20")
    # the stem's BN and two per unit (weight and bias of 16/32/64 channels) are gone
    assert _params(bn) - _params(model) == 2 * (16 + 2 * 3 * (16 + 32 + 64))


def test_branch_gate_adds_one_scalar_per_unit():
    base = create_model("cifar_resnet20", norm="none")
    gated = create_model("cifar_resnet20", norm="none", branch_gate=True)
    assert _params(gated) - _params(base) == len(base.units()) == 9
    assert all(u.gate is not None and float(u.gate.detach()) == 0.0 for u in gated.units())
    assert all(u.gate is None for u in base.units())
    # without the option the state dict keeps torchvision's keys
    assert not any(k.endswith("gate") for k in create_model("resnet18").state_dict())


@pytest.mark.parametrize("norm", ["batch", "none"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_gated_unit_is_exactly_its_shortcut_at_init(norm, mode):
    model = create_model("cifar_resnet14", norm=norm, branch_gate=True).train(mode == "train")
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        h = model.forward_stem(x)
        for unit in model.units():
            out = unit(h)
            assert torch.equal(out, unit.shortcut(h).relu())
            h = out


def test_gate_at_zero_still_learns():
    """The gate's gradient is the branch's output against the upstream gradient: not zero at init."""
    model = create_model("cifar_resnet14", norm="none", branch_gate=True)
    model(torch.randn(8, 3, 16, 16)).logsumexp(1).sum().backward()
    assert any(float(u.gate.grad.abs()) > 0 for u in model.units())


def test_fixup_initialisation():
    model = create_model("cifar_resnet20", norm="none", fixup=True)
    units = model.units()
    assert all(isinstance(u, FixupBasicBlock) for u in units)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert isinstance(model.bn1, ScalarBias) and isinstance(model.final_norm, ScalarBias)
    # per unit 4 biases and 1 multiplier, plus the stem's and the classifier's bias
    assert _params(model) - _params(create_model("cifar_resnet20", norm="none")) == 5 * len(units) + 2
    assert all(float(u.conv2.weight.detach().abs().max()) == 0.0 and float(u.scale.detach()) == 1.0 for u in units)
    assert float(model.fc.weight.detach().abs().max()) == 0.0 and float(model.fc.bias.detach().abs().max()) == 0.0
    # the first conv of each branch is He-initialised and scaled by L^-1/2 (L = 9 units)
    torch.manual_seed(0)
    plain = create_model("cifar_resnet20", norm="none")
    torch.manual_seed(0)
    fixup = create_model("cifar_resnet20", norm="none", fixup=True)
    for a, b in zip(plain.units(), fixup.units()):
        torch.testing.assert_close(b.conv1.weight, a.conv1.weight * 9 ** -0.5)


def test_fixup_units_start_as_their_shortcut_and_the_net_outputs_zero():
    model = create_model("cifar_resnet14", norm="none", fixup=True).eval()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), torch.zeros(3, 10))
        h = model.forward_stem(x)
        for unit in model.units():
            out = unit(h)
            assert torch.equal(out, unit.shortcut(h).relu())
            h = out


def test_zero_init_last_of_fixup_unit_silences_its_trained_branch():
    unit = FixupBasicBlock(16, 16)
    for p in unit.parameters():
        nn.init.normal_(p, 0.0, 0.5)
    x = torch.rand(2, 16, 8, 8)
    assert not torch.equal(unit(x), x)
    unit.zero_init_last()
    with torch.no_grad():
        assert torch.equal(unit(x), x)


@pytest.mark.parametrize(("name", "options", "message"), [
    ("cifar_plain20", {"branch_gate": True}, "a plain network has no branch to gate"),
    ("cifar_plain20", {"norm": "none", "fixup": True}, "fixup=True needs residual units"),
    ("cifar_resnet20", {"fixup": True}, "add norm='none'"),
    ("resnet50", {"norm": "none", "fixup": True}, "fixup=True is built for basic units"),
    ("cifar_resnet20", {"branch_gate": True, "zero_init_last": True}, "choose one of them"),
    ("cifar_resnet20", {"norm": "none", "fixup": True, "branch_gate": True}, "choose one of them"),
    ("cifar_resnet20", {"norm": "layer"}, "norm='layer' is not known"),
    ("cifar_resnet20", {"fixup": 1}, "must be bool"),
])
def test_bad_options_name_the_fix(name, options, message):
    with pytest.raises(ValueError, match=message):
        create_model(name, **options)


def test_plain_unit_refuses_a_gate():
    with pytest.raises(ValueError, match="no residual branch to gate"):
        BasicBlock(16, 16, residual=False, branch_gate=True)
