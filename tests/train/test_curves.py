"""curves.png: title, log axes, learning-rate panel, best checkpoint marked, the training loss
at every logged step (losses.jsonl)."""

from __future__ import annotations

import json

import pytest
from matplotlib.figure import Figure
from train_helpers import tiny_recipe

from resnets.train import config_from_mapping, lr_at, run
from resnets.train.rundir.curves import best_step, plot_curves


def test_every_logged_step_has_its_training_loss_and_rate(tmp_path) -> None:
    cfg = config_from_mapping(tiny_recipe(tmp_path, train={"iterations": 12, "log_every": 3}))
    result = run(cfg, device="cpu", quiet=True)
    rows = [json.loads(line) for line in (result.run_dir / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6, 9, 12]
    for r in rows:  # the mean of the log_every steps that end there, and the rate of the last one
        window = result.losses[r["step"] - 3: r["step"]]
        assert r["loss"] == pytest.approx(sum(window) / 3, rel=1e-6)
        assert r["lr"] == lr_at(r["step"] - 1, run_schedule(result))
    assert (result.run_dir / "curves.png").stat().st_size > 0


def run_schedule(result):  # noqa: ANN001, ANN201 - the schedule the run used, rebuilt from its config
    from resnets.train import load_config, resolve_schedule

    cfg = load_config(result.run_dir / "config.yaml")
    # counted in iterations (schedule.unit: iter): the epoch length does not enter it
    return resolve_schedule(cfg.schedule, base_lr=cfg.optim.lr, steps_per_epoch=1, total_steps=cfg.train.iterations)


def test_best_step_follows_the_engine_rule() -> None:
    records = [{"step": 4, "val_acc": 0.5, "val_loss": 1.0}, {"step": 8, "val_acc": 0.9, "val_loss": 0.4},
               {"step": 12, "val_acc": 0.9, "val_loss": 0.3}, {"step": 16, "val_acc": 0.9, "val_loss": 0.3}]
    assert best_step(records) == 12  # ties in accuracy go to the lower loss, then to the earlier step
    assert best_step([{"step": 4, "train_acc": 0.5}]) is None


def test_the_picture(tmp_path, monkeypatch) -> None:
    drawn: list[Figure] = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: drawn.append(self))
    records = [{"step": s, "lr": 0.1, "train_loss": 1.0 / s, "train_acc": 1 - 0.5 / s,
                "val_loss": 2.0 / s, "val_acc": acc} for s, acc in ((10, 0.5), (20, 1.0), (30, 0.9))]
    losses = [{"step": s, "loss": 1.0 / s, "lr": 0.1 * (1 - s / 40)} for s in range(5, 35, 5)]
    plot_curves(records, losses, tmp_path / "c.png", title="resnet20 on digits: demo-1")
    [fig] = drawn
    loss, error, lr = fig.axes
    assert fig._suptitle.get_text() == "resnet20 on digits: demo-1"
    assert loss.get_yscale() == "log" and error.get_yscale() == "log"
    logged = next(line for line in loss.lines if line.get_label() == "train (logged steps)")
    assert list(logged.get_xdata()) == [r["step"] for r in losses]  # every logged step, not only evaluations
    val = next(line for line in error.lines if line.get_label() == "val")
    floor = 100 * 0.5 / 30 / 2  # half the smallest non-zero error of either split (train at step 30)
    assert list(val.get_ydata()) == pytest.approx([50.0, floor, 10.0])  # 0% is drawn at the floor
    assert f"0 drawn at {floor:.2g}" in error.get_ylabel()
    assert lr.get_title() == "learning rate" and len(lr.lines[0].get_xdata()) == len(losses) + 3
    for ax in fig.axes:  # the best checkpoint (step 20) on every panel
        assert any(line.get_label() == "best checkpoint (step 20)" and list(line.get_xdata()) == [20, 20]
                   for line in ax.lines)
