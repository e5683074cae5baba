import pytest
import torch
from torch import nn

from resnets.train.config import OptimConfig
from resnets.train.optim import OPTIMIZERS, build_optimizer, param_groups


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4, 3))


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW), ("rmsprop", torch.optim.RMSprop)])
def test_registry_builds_each_optimizer(name, cls):
    opt = build_optimizer(tiny(), OptimConfig(name=name, lr=0.01), device=torch.device("cpu"))
    assert type(opt) is cls
    assert opt.param_groups[0]["lr"] == 0.01
    assert set(OPTIMIZERS) == {"sgd", "adam", "adamw", "rmsprop"}


def test_sgd_options_are_passed():
    opt = build_optimizer(tiny(), OptimConfig(name="sgd", momentum=0.8, nesterov=True, weight_decay=1e-3),
                          device=torch.device("cpu"))
    g = opt.param_groups[0]
    assert (g["momentum"], g["nesterov"], g["weight_decay"]) == (0.8, True, 1e-3)


def test_no_decay_groups_hold_bn_and_biases():
    model = tiny()
    groups = param_groups(model, OptimConfig(weight_decay=5e-4, no_decay_norm_bias=True))
    decay, no_decay = groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(model[0].weight), id(model[3].weight)}
    assert {id(p) for p in no_decay["params"]} == {id(model[1].weight), id(model[1].bias), id(model[3].bias)}


def test_frozen_parameters_are_left_out_and_unknown_names_rejected():
    model = tiny()
    model[0].weight.requires_grad_(False)
    (group,) = param_groups(model, OptimConfig())
    assert id(model[0].weight) not in {id(p) for p in group["params"]}
    with pytest.raises(ValueError, match="optim.name='lars'"):
        build_optimizer(model, OptimConfig(name="lars"), device=torch.device("cpu"))
