"""The gradient study: per-layer gradients, and plain against residual at depth."""

from __future__ import annotations

import math

import pytest
import torch

from resnets.studies.bands import NOT_SHOWN, OPPOSITE, SHOWN, band
from resnets.studies.gradients import drift_kind, gradient_claims, gradient_effect, init_ratio, measure
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


def _rows(plain_deep: list[float], residual_deep: list[float], *, trained: float = 1.0,
          plain_errors: tuple[float, float] = (0.01, 0.5)) -> list[dict]:
    """Rows of a study at depths 8 and 56: every depth-8 net has ratio 10 (gradient and activations);
    the depth-56 nets the given first/last gradient ratios, one per seed."""
    rows = []
    for seed, (p, q) in enumerate(zip(plain_deep, residual_deep)):
        for kind, depth, ratio, err in (("plain", 8, 10.0, plain_errors[0]), ("plain", 56, p, plain_errors[1]),
                                        ("residual", 8, 10.0, 0.01), ("residual", 56, q, 0.01)):
            rows.append({"kind": kind, "depth": depth, "seed": seed, "init_ratio": ratio, "trained_ratio": trained,
                         "init_act_ratio": 1.0, "trained_act_ratio": 1.0, "train_error": err + 0.001 * seed})
    return rows


def test_exploding_plain_gradients_do_not_vanish_but_are_not_healthy():
    eff = gradient_effect(_rows([1e5, 2e5, 4e5], [20.0, 30.0, 15.0]))
    init = eff["init"]
    assert (eff["depth"], eff["shallow_depth"]) == (56, 8)
    assert init["plain"]["grad_kind"] == "exploding" and init["residual"]["grad_kind"] == "healthy"
    assert init["plain"]["not_vanishing"] == SHOWN and init["plain"]["healthy"] == OPPOSITE
    assert init["residual"]["healthy"] == SHOWN and init["residual_flatter"] == SHOWN
    assert init["plain"]["grad_drift"]["min"] == pytest.approx(4.0)  # 1e5 / 10
    assert init["plain"]["act_not_vanishing"] == SHOWN
    assert eff["plain_degrades"]["verdict"] == SHOWN
    claims = gradient_claims(eff, steps=100)
    assert {c.verdict for c in claims} <= {SHOWN, NOT_SHOWN, OPPOSITE}
    assert any("exploding" in c.measured and c.verdict == OPPOSITE for c in claims)


def test_vanishing_gradients_are_the_opposite_of_the_paper():
    eff = gradient_effect(_rows([1e-2, 2e-2, 5e-3], [10.0, 10.0, 10.0]))
    assert eff["init"]["plain"]["grad_kind"] == "vanishing"
    assert eff["init"]["plain"]["not_vanishing"] == OPPOSITE and eff["init"]["plain"]["healthy"] == OPPOSITE


def test_mixed_seeds_and_one_seed_are_not_shown():
    mixed = gradient_effect(_rows([1e3, 20.0], [10.0, 300.0]))["init"]
    assert mixed["plain"]["grad_kind"] == "mixed" and mixed["plain"]["healthy"] == NOT_SHOWN
    assert mixed["residual_flatter"] == NOT_SHOWN  # the bands of |drift| overlap
    single = gradient_effect(_rows([1e5], [10.0]))
    assert single["init"]["plain"]["healthy"] == NOT_SHOWN and single["plain_degrades"]["verdict"] == NOT_SHOWN


def test_no_degradation_when_the_errors_overlap():
    eff = gradient_effect(_rows([10.0, 10.0, 10.0], [10.0, 10.0, 10.0], plain_errors=(0.01, 0.011)))
    assert eff["init"]["plain"]["healthy"] == SHOWN
    assert eff["plain_degrades"]["verdict"] == NOT_SHOWN
    assert drift_kind(band([0.5, -0.5])) == "healthy" and drift_kind(band([-1.5, -2.0])) == "vanishing"
