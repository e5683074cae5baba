"""The lesion study: deleting blocks at test time, its verdicts, and a small run."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from resnets import create_model
from resnets.studies.bands import band
from resnets.studies.lesion import at_chance, deletable, draws_of, lesion, run_lesion, smooth_growth
from resnets.studies.nets import build_net
from resnets.studies.recipe import Recipe


def _trained_like(name: str, **options: object) -> nn.Module:
    """A network whose weights and BN statistics have moved away from their initial values."""
    torch.manual_seed(0)
    net = create_model(name, num_classes=10, in_chans=1, **options)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))  # (N, C, H, W), (N,)
    for _ in range(6):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@pytest.mark.parametrize("name", ["cifar_resnet20", "preact_resnet20"])  # option A; B on pre-activated input
@pytest.mark.parametrize("unit", [0, 1, 2, 3, 5])  # 3: downsampling, the others keep the shape
def test_lesion_of_a_zero_initialised_block_changes_nothing(name, unit):
    net = _trained_like(name)
    net.units()[unit].zero_init_last()
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(lesion(net, units=[unit])(x), net(x))


def test_lesion_of_a_trained_block_changes_the_outputs_and_leaves_the_model_alone():
    net = _trained_like("cifar_resnet20")
    x = torch.randn(16, 1, 8, 8)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        reference = net(x)
        assert not torch.equal(lesion(net, units=[1])(x), reference)
        assert torch.equal(net(x), reference)
    assert len(net.units()) == 9
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_plain_units_become_identity_or_zero_pad():
    net = _trained_like("cifar_plain14")
    assert deletable(net) == [0, 1, 3, 5]  # units 2 and 4 open stages 2 and 3 (stride 2, more channels)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        for units in ([2], [4], [0, 1, 2, 3, 4, 5]):  # every shape still fits
            assert lesion(net, units=units)(x).shape == (4, 10)
        h = net.forward_stem(x)
        stage1 = lesion(net, units=[0]).layer1
        assert torch.equal(stage1[0](h), h)  # a deleted plain unit that keeps the shape is the identity


def test_lesion_refuses_unknown_units():
    net = build_net(depth=8, kind="residual", num_classes=10, in_chans=1, image_size=8)
    with pytest.raises(ValueError, match="units 0..2"):
        lesion(net, units=[3])


def test_random_draws_are_reproducible_and_distinct_units():
    a = draws_of(range(12), k=4, draws=5, seed=1)
    assert a == draws_of(range(12), k=4, draws=5, seed=1)
    assert a != draws_of(range(12), k=4, draws=5, seed=2)
    assert all(len(set(d)) == 4 for d in a)


def _curve(values_by_k):
    return [band(v).to_dict() for v in values_by_k]


def test_smooth_growth_verdicts():
    steady = _curve([[0.02, 0.03, 0.025], [0.05, 0.06, 0.055], [0.09, 0.1, 0.095], [0.14, 0.15, 0.16]])
    assert smooth_growth(steady)[0] == "shown"
    cliff = _curve([[0.02, 0.03, 0.025], [0.03, 0.035, 0.03], [0.035, 0.04, 0.03], [0.6, 0.7, 0.65]])
    assert smooth_growth(cliff)[0] == "not shown"
    flat = _curve([[0.02, 0.05, 0.03], [0.03, 0.04, 0.02], [0.04, 0.02, 0.03]])
    assert smooth_growth(flat)[0] == "not shown"
    falling = _curve([[0.3, 0.32, 0.31], [0.2, 0.21, 0.2], [0.1, 0.11, 0.12]])
    assert smooth_growth(falling)[0] == "opposite"
    assert smooth_growth(_curve([[0.1], [0.5]]))[0] == "not shown"  # one seed decides nothing


def test_at_chance_verdicts():
    assert at_chance(band([0.85, 0.88, 0.9]), chance=0.9) == "shown"
    assert at_chance(band([0.05, 0.1, 0.2]), chance=0.9) == "opposite"
    assert at_chance(band([0.3, 0.6, 0.8]), chance=0.9) == "not shown"
    assert at_chance(band([0.9]), chance=0.9) == "not shown"


def test_small_lesion_study(tmp_path):
    recipe = Recipe(data="digits", batch_size=32, iterations=20, eval_every=20, train_eval_samples=100,
                    final_train_eval_samples=100, depths=(14,), seeds=(0, 1))
    out = run_lesion(recipe, draws=2, out_dir=tmp_path, workers=1, quiet=True)
    saved = json.loads((tmp_path / "nets" / "residual-14-s1.json").read_text())
    les = saved["lesion"]
    assert [s["downsampling"] for s in les["single"]] == [False, False, True, False, True, False]
    assert les["k"] == [1, 2, 3, 4] and all(len(d) == 2 for d in les["random"])
    assert all(0.0 <= e <= 1.0 for d in les["random"] for e in d)
    assert les["intact"] == pytest.approx(saved["test_error"])
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert {(r["kind"], r["depth"]) for r in rows} == {("plain", 14), ("residual", 14)}
    assert all(r["intact"]["n"] == 2 and len(r["k_deleted"]) == 4 for r in rows)
    assert [c.verdict in ("shown", "not shown", "opposite") for c in out["claims"]] == [True] * 4
    html = out["report"].read_text()
    assert html.count('<img src="data:image/png;base64,') == 2 and html.count("What to look at") == 2
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert len(claims["claims"]) == 4 and "Fig. 3" in claims["claims"][0]["paper"]


def test_cli_lesion_defaults_and_bad_input(tmp_path, capsys):
    from resnets.cli import main
    from resnets.commands.studies import _recipe, build_args

    args = build_args(["study", "lesion"])
    assert args.draws == 10
    cpu = _recipe("lesion", args, "cpu")
    assert cpu.data == "digits" and len(cpu.seeds) >= 3
    assert _recipe("lesion", args, "cuda").depths == (110,)
    for argv, words in ((["--draws", "0"], "--draws must be >= 1"), (["--depths", "10"], "6n+2"),
                        (["--iterations", "100", "--milestones", "200"], "must lie below --iterations")):
        assert main(["study", "lesion", *argv, "--out", str(tmp_path / "x"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "x").exists()


def _row(kind, *, intact, one, down, ks):
    return {"kind": kind, "depth": 32, "seeds": [0, 1, 2], "num_classes": 10, "intact": band(intact).to_dict(),
            "one_deleted": band(one).to_dict(), "worst_one_deleted": band([max(one)] * 3).to_dict(),
            "downsampling_deleted": band(down).to_dict(), "k": list(range(1, len(ks) + 1)),
            "k_deleted": [band(v).to_dict() for v in ks]}


def test_lesion_claims_on_constructed_results():
    from resnets.studies.lesion import lesion_claims

    steady = [[0.02, 0.03, 0.025], [0.06, 0.07, 0.065], [0.1, 0.12, 0.11], [0.15, 0.16, 0.17], [0.2, 0.22, 0.21]]
    paper_like = [_row("residual", intact=[0.01, 0.012, 0.011], one=[0.02, 0.025, 0.022], down=[0.1, 0.12, 0.11],
                       ks=steady),
                  _row("plain", intact=[0.02, 0.03, 0.025], one=[0.88, 0.9, 0.89], down=[0.9, 0.9, 0.9],
                       ks=[[0.9, 0.9, 0.9]] * 5)]
    assert [c.verdict for c in lesion_claims(paper_like)] == ["shown"] * 4
    overlapping = [_row("residual", intact=[0.01, 0.012, 0.011], one=[0.2, 0.5, 0.3], down=[0.05, 0.06, 0.055],
                        ks=steady),
                   _row("plain", intact=[0.02, 0.03, 0.025], one=[0.3, 0.45, 0.4], down=[0.9, 0.9, 0.9],
                        ks=[[0.9, 0.9, 0.9]] * 5)]
    assert [c.verdict for c in lesion_claims(overlapping)] == ["not shown", "not shown", "opposite", "shown"]
