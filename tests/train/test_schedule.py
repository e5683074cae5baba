import math

import pytest

from resnets.train.config import ScheduleConfig
from resnets.train.schedule import lr_at, resolve_schedule


def paper(*, warmup: float = 0.0):
    cfg = ScheduleConfig(name="multistep", unit="iter", milestones=[32000, 48000], gamma=0.1,
                         warmup=warmup, warmup_mode="constant", warmup_factor=0.1)
    return resolve_schedule(cfg, base_lr=0.1, steps_per_epoch=352, total_steps=64000)


def test_paper_step_schedule_at_its_milestones():
    s = paper()
    assert lr_at(0, s) == pytest.approx(0.1)
    assert lr_at(31999, s) == pytest.approx(0.1)
    assert lr_at(32000, s) == pytest.approx(0.01)
    assert lr_at(47999, s) == pytest.approx(0.01)
    assert lr_at(48000, s) == pytest.approx(0.001)
    assert lr_at(63999, s) == pytest.approx(0.001)


def test_resnet110_constant_warmup_returns_to_base():
    s = paper(warmup=400)
    assert lr_at(0, s) == pytest.approx(0.01)
    assert lr_at(399, s) == pytest.approx(0.01)
    assert lr_at(400, s) == pytest.approx(0.1)
    assert lr_at(32000, s) == pytest.approx(0.01)


def test_linear_warmup_then_multistep_in_epochs():
    cfg = ScheduleConfig(name="multistep", unit="epoch", milestones=[30, 60], warmup=1,
                         warmup_mode="linear", warmup_factor=0.0)
    s = resolve_schedule(cfg, base_lr=0.4, steps_per_epoch=100, total_steps=9000)
    assert s.milestones == (3000, 6000) and s.warmup_steps == 100
    assert lr_at(0, s) == pytest.approx(0.0)
    assert lr_at(50, s) == pytest.approx(0.2)
    assert lr_at(100, s) == pytest.approx(0.4)
    assert lr_at(2999, s) == pytest.approx(0.4)
    assert lr_at(3000, s) == pytest.approx(0.04)
    assert lr_at(6000, s) == pytest.approx(0.004)


def test_step_every_30_epochs():
    cfg = ScheduleConfig(name="step", unit="epoch", step_size=30)
    s = resolve_schedule(cfg, base_lr=0.1, steps_per_epoch=10, total_steps=900)
    assert [lr_at(e * 10, s) for e in (0, 29, 30, 59, 60, 89)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_cosine_with_warmup_spans_the_rest():
    cfg = ScheduleConfig(name="cosine", unit="iter", warmup=10, warmup_mode="linear", warmup_factor=0.1, min_lr=0.001)
    s = resolve_schedule(cfg, base_lr=1.0, steps_per_epoch=5, total_steps=110)
    assert lr_at(0, s) == pytest.approx(0.1)
    assert lr_at(10, s) == pytest.approx(1.0)
    assert lr_at(60, s) == pytest.approx(0.001 + 0.999 * 0.5)
    assert lr_at(110, s) == pytest.approx(0.001)
    values = [lr_at(t, s) for t in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_lr_at_is_pure():
    s = paper(warmup=400)
    first = [lr_at(t, s) for t in range(0, 64000, 997)]
    assert first == [lr_at(t, s) for t in range(0, 64000, 997)]
    assert all(math.isfinite(v) and v > 0 for v in first)
