"""The identity study: zeroed branches are exact identities; inserted units; branch sizes."""

from __future__ import annotations

import json

import torch
from torch import nn

from resnets.studies.bands import NOT_SHOWN, OPPOSITE, SHOWN
from resnets.studies.identity import (
    branch_heading,
    branch_ratios,
    identity_claims,
    identity_effect,
    insertion,
    response_stds,
    run_identity,
    zeroed_branch_error,
)
from resnets.studies.nets import build_net
from resnets.studies.recipe import Recipe


def _trained_like(depth: int) -> nn.Module:
    """A residual net whose weights and BN statistics have moved away from their initial values."""
    torch.manual_seed(0)
    net = build_net(depth=depth, kind="residual", num_classes=10, in_chans=1, image_size=8)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))  # (N, C, H, W), (N,)
    for _ in range(8):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def test_zeroed_branch_is_the_identity_to_float_precision():
    net = _trained_like(14)
    errors = zeroed_branch_error(net, torch.randn(32, 1, 8, 8))
    assert len(errors) == 6  # every unit, the two with option-A shortcuts included
    assert max(errors) <= 1e-6


def test_branch_that_is_not_zeroed_is_not_the_identity():
    """The measurement can fail: an intact branch differs from its shortcut."""
    net = _trained_like(8)
    ratios = branch_ratios(net, torch.randn(32, 1, 8, 8))
    assert len(ratios) == 3 and min(ratios) > 1e-3


def test_zero_init_residual_units_keep_outputs_plain_units_do_not():
    net = _trained_like(8)
    x, y = torch.randn(48, 1, 8, 8), torch.randint(0, 10, (48,))
    result = insertion(net, x, y, k=3)
    assert result["zero_residual_max_diff"] <= 1e-6
    assert result["zero_residual_accuracy"] == result["accuracy"]
    assert result["plain_max_diff"] > 0.1 * result["logit_scale"]
    # the original network is untouched by the insertions
    assert len(net.units()) == 3


def test_response_stds_one_per_bn_layer():
    net = _trained_like(8)
    stds = response_stds(net, torch.randn(16, 1, 8, 8))
    assert len(stds) == sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 7
    assert all(s > 0 for s in stds)


def test_identity_study_reports_its_measurements(tmp_path):
    recipe = Recipe(data="digits", batch_size=32, iterations=3, eval_every=3, train_eval_samples=100,
                    final_train_eval_samples=100, depths=(8,), seeds=(0,))
    out = run_identity(recipe, k=2, out_dir=tmp_path, workers=1, quiet=True)
    saved = json.loads((tmp_path / "nets" / "residual-8-s0.json").read_text())
    assert saved["zeroed_branch_max_error"] <= 1e-6
    assert saved["insertion"]["zero_residual_max_diff"] <= 1e-6
    assert saved["insertion"]["plain_max_diff"] > 0.1 * saved["insertion"]["logit_scale"]
    html = out["report"].read_text()
    assert html.count('<img src="data:image/png;base64,') == 2
    assert f"{saved['zeroed_branch_max_error']:.2g}" in out["summary"].read_text()


def _rows(*, ratios: dict[int, list[float]], plain_std: dict[int, list[float]],
          residual_std: dict[int, list[float]]) -> list[dict]:
    """Rows of an identity study: per depth, one value per seed."""
    rows = []
    for depth, values in residual_std.items():
        for seed, (ratio, std) in enumerate(zip(ratios[depth], values)):
            rows.append({"kind": "residual", "depth": depth, "seed": seed, "mean_response_std": std,
                         "mean_branch_ratio": ratio, "zeroed_branch_max_error": 0.0, "zero_residual_max_diff": 0.0,
                         "plain_max_diff": 5.0, "logit_scale": 20.0})
        for seed, std in enumerate(plain_std.get(depth, [])):
            rows.append({"kind": "plain", "depth": depth, "seed": seed, "mean_response_std": std})
    return rows


def test_verdicts_follow_the_data_and_say_opposite_of_the_paper():
    eff = identity_effect(_rows(ratios={8: [1.5, 1.6, 1.55], 32: [0.5, 0.6, 0.55]},
                                plain_std={8: [1.0, 1.1, 1.05], 32: [0.5, 0.55, 0.6]},
                                residual_std={8: [0.5, 0.6, 0.55], 32: [0.8, 0.9, 0.85]}))
    assert eff["branch"]["8"]["verdict"] == OPPOSITE and eff["branch"]["32"]["verdict"] == SHOWN
    assert eff["responses"]["8"]["verdict"] == SHOWN  # residual below plain, bands apart
    assert eff["responses"]["32"]["verdict"] == OPPOSITE  # residual above plain: the opposite of Fig. 7
    assert eff["deeper_smaller"]["verdict"] == OPPOSITE
    assert eff["zeroed"]["verdict"] == SHOWN and eff["insertion"]["verdict"] == SHOWN
    assert branch_heading(eff) == "Residual branches against the identity path: not smaller at every depth"
    claims = identity_claims(eff, k=2)
    assert len(claims) == 2 + 2 + 2 + 1 and sum(c.verdict == OPPOSITE for c in claims) == 3


def test_overlapping_bands_and_one_seed_are_not_shown():
    eff = identity_effect(_rows(ratios={8: [0.9, 1.1]}, plain_std={8: [1.0, 1.2]}, residual_std={8: [1.1, 1.3]}))
    assert eff["branch"]["8"]["verdict"] == NOT_SHOWN and eff["responses"]["8"]["verdict"] == NOT_SHOWN
    one = identity_effect(_rows(ratios={8: [2.0]}, plain_std={8: [1.0]}, residual_std={8: [0.1]}))
    assert one["branch"]["8"]["verdict"] == NOT_SHOWN and one["responses"]["8"]["verdict"] == NOT_SHOWN
    big = identity_effect(_rows(ratios={8: [2.0, 3.0], 20: [1.5, 1.2]}, plain_std={}, residual_std={8: [1, 1], 20: [1, 1]}))
    assert branch_heading(big) == "Residual branches are larger than the identity path (not 'close to zero')"
