"""The gradient study: per-layer gradients, and plain against residual at depth."""

from __future__ import annotations

import math

import pytest
import torch

from resnets.studies.gradients import gradient_effect, init_ratio, measure
from resnets.studies.nets import NetSpec, build_net


def test_measure_covers_every_layer_and_unit():
    net = build_net(depth=14, kind="plain", num_classes=10, in_chans=1, image_size=8)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    m = measure(net, torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,)))
    assert len(m["grad_rms"]) == 13  # stem + 2 convs x 6 units (the fc is not a conv)
    assert len(m["act_std"]) == 6
    assert m["first_last_ratio"] == pytest.approx(m["grad_rms"][0] / m["grad_rms"][-1])
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # measured on a copy


@pytest.mark.parametrize("depth", [32, 56])
def test_residual_keeps_the_gradient_scale_better_than_plain_at_depth(depth):
    torch.manual_seed(1)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    for seed in (0, 1):
        plain = init_ratio(NetSpec(kind="plain", depth=depth, seed=seed), x=x, y=y, num_classes=10)
        residual = init_ratio(NetSpec(kind="residual", depth=depth, seed=seed), x=x, y=y, num_classes=10)
        assert abs(math.log10(residual)) < abs(math.log10(plain)) - 0.5


def test_plain_spread_grows_with_depth():
    torch.manual_seed(2)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    spreads = [abs(math.log10(init_ratio(NetSpec(kind="plain", depth=d), x=x, y=y, num_classes=10))) for d in (8, 32)]
    assert spreads[1] > spreads[0] + 0.5


def test_gradient_effect_compares_the_deepest_pair():
    rows = [{"kind": k, "depth": d, "init_ratio": r, "trained_ratio": 2.0}
            for k, d, r in (("plain", 8, 10.0), ("plain", 32, 1000.0), ("residual", 32, 100.0), ("residual", 8, 1e5))]
    eff = gradient_effect(rows)
    assert eff["depth"] == 32
    assert eff["init"]["plain_spread"] == pytest.approx(3.0) and eff["init"]["residual_spread"] == pytest.approx(2.0)
    assert eff["init"]["residual_better"] and not eff["trained"]["residual_better"]
    trend = eff["init"]["ratio_trend"]
    assert trend["plain"]["shallow"] == pytest.approx(10.0) and trend["plain"]["deep"] == pytest.approx(1000.0)
    assert trend["residual"]["deep"] == pytest.approx(100.0)
