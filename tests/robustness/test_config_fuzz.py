"""Recipes and command-line values fuzzed with hypothesis: every bad value is refused by
``config_from_mapping`` with a ConfigError/ValueError that names the key, and every value it
accepts builds (model, optimizer, schedule, runtime) without an error from deep inside torch.
The command line turns the same mistakes into exit code 2 and one line."""

from __future__ import annotations

import math
import os
import traceback
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from robust_helpers import tiny_recipe

from resnets.cli import main
from resnets.train import config_from_mapping, load_config, resolve_schedule
from resnets.train.configio import ConfigError, known_keys
from resnets.train.network import model_from_config
from resnets.train.optim import build_optimizer
from resnets.train.runtime import make_runtime, seed_everything
from resnets.train.schedule import lr_at

SECTIONS = {"model", "data", "optim", "schedule", "train", "finetune"}
LEAVES = sorted(k for k in known_keys() if k not in SECTIONS)
# Values that only name other files or processes, fuzzed elsewhere (bad checkpoints, run locks).
PATHS = {"data.root", "train.out_dir", "train.name", "train.resume", "finetune.source"}

garbage = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-10**6, max_value=10**6), st.sampled_from([0, -1, 10**12, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, -1e-9, 1e30, float("nan")]),
    st.text(max_size=6), st.sampled_from(["1e-4", "nan", "inf", "-inf", "A", "auto", "sgd", "yes"]),
    st.lists(st.integers(min_value=-3, max_value=300), max_size=3),
    st.lists(st.floats(allow_nan=True), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _set(recipe: dict[str, Any], key: str, value: Any) -> None:
    section, leaf = key.split(".", 1)
    recipe.setdefault(section, {})[leaf] = value


def _build(cfg: Any) -> None:
    """What a run builds from the config before training (data excepted: its checks run on load)."""
    model = model_from_config(cfg.model, num_classes=cfg.model.num_classes or 3, in_chans=cfg.model.in_chans or 1)
    optimizer = build_optimizer(model, cfg.optim, device=torch.device("cpu"))
    total = cfg.train.iterations if cfg.train.iterations is not None else cfg.train.epochs * 4
    schedule = resolve_schedule(cfg.schedule, base_lr=cfg.optim.lr, steps_per_epoch=4, total_steps=total)
    for step in {0, 1, total // 2, total - 1}:
        lr = lr_at(step, schedule)
        assert math.isfinite(lr) and lr >= 0, (step, lr)
    assert optimizer.param_groups
    make_runtime(cfg.train, device="cpu")
    seed_everything(cfg.train.seed)


def _names_the_key(message: str, key: str) -> bool:
    return key in message or key.split(".", 1)[1] in message


def _build_or_refuse(cfg: Any, key: str) -> None:
    """Builds, or raises a ValueError of this library (not of torch or numpy) naming ``key``."""
    try:
        _build(cfg)
    except ValueError as exc:
        raised_in = traceback.extract_tb(exc.__traceback__)[-1].filename
        assert f"{os.sep}resnets{os.sep}" in raised_in and _names_the_key(str(exc), key), (key, raised_in, str(exc))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([k for k in LEAVES if k not in PATHS]), garbage), min_size=1, max_size=1))
@example(edits=[("model.output_stride", 5)])
@example(edits=[("optim.momentum", -1)])
@example(edits=[("train.iterations", 0)])
@example(edits=[("optim.lr", float("nan"))])
def test_fuzzed_values_are_refused_by_name_or_build(tmp_path_factory: pytest.TempPathFactory, edits: list) -> None:
    recipe = tiny_recipe(Path("/nonexistent"))
    for key, value in edits:
        _set(recipe, key, value)
    try:
        cfg = config_from_mapping(recipe)
    except ValueError as exc:  # ConfigError is a ValueError
        assert _names_the_key(str(exc), edits[0][0]), (edits, str(exc))
        return
    _build_or_refuse(cfg, edits[0][0])


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(SECTIONS)), st.text(min_size=1, max_size=12))
def test_unknown_keys_are_refused_by_name(section: str, leaf: str) -> None:
    recipe = tiny_recipe(Path("/nonexistent"))
    if f"{section}.{leaf}" in known_keys():
        return
    recipe.setdefault(section, {})[leaf] = 1
    with pytest.raises(ConfigError) as err:
        config_from_mapping(recipe)
    assert repr(f"{section}.{leaf}") in str(err.value)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_garbage_yaml_files_are_refused(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("yaml") / "recipe.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass") if "\ud800" not in text else None
    if not path.exists():
        return
    try:
        cfg = load_config(path)
    except ValueError as exc:
        assert str(exc)
        return
    _build(cfg)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([k for k in LEAVES if k not in PATHS]), st.text(max_size=12))
def test_fuzzed_command_line_values_are_refused_by_name_or_build(key: str, raw: str) -> None:
    try:
        cfg = config_from_mapping(tiny_recipe(Path("/nonexistent")), [f"{key}={raw}"])
    except ValueError as exc:
        assert _names_the_key(str(exc), key), (key, raw, str(exc))
        return
    _build_or_refuse(cfg, key)


BAD_COMMAND_LINES = [
    (["optim.lr=-0.1"], "optim.lr"),
    (["optim.lr=nan"], "optim.lr"),
    (["data.batch_size=-4"], "batch_size"),
    (["train.epochs=abc", "train.iterations=null"], "train.epochs"),
    (["optim.lrr=0.1"], "optim.lrr"),
    (["schedule.milestones=[3, 1]"], "schedule.milestones"),
    (["optim.momentum=[unclosed"], "optim.momentum"),
    (["model.name=resnet9000"], "model.name"),
]


@pytest.mark.parametrize("overrides, key", BAD_COMMAND_LINES)
def test_the_command_line_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                overrides: list[str], key: str) -> None:
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_recipe(tmp_path / "runs")))
    code = main(["train", "--config", str(config), *overrides, "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and key in err, err
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_a_garbage_yaml_file_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("model: {name: resnet20\ndata: [1, 2\n")
    assert main(["train", "--config", str(config), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(config) in err, err
