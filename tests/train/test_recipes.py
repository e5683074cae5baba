"""Recipes shipped in the package, found by name from any directory; one length per run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from resnets.cli import main
from resnets.train import load_config
from resnets.train.recipes import RECIPES_DIR, describe, find_recipe, shipped_recipes

REPO = Path(__file__).resolve().parents[2]


def test_the_recipes_are_package_data_and_configs_is_the_same_folder() -> None:
    import resnets

    assert RECIPES_DIR == Path(resnets.__file__).resolve().parent / "recipes"
    assert {"demo", "cifar10_he2015", "imagenet_v1", "finetune_example"} <= set(shipped_recipes())
    assert (REPO / "configs").resolve() == RECIPES_DIR  # one copy: configs/ points into the package
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"recipes/*.yaml"' in pyproject  # installed with the package


def test_by_name_from_another_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for given in ("demo", "demo.yaml", "configs/demo.yaml", "cifar10_he2015"):
        name = Path(given).name.removesuffix(".yaml")
        assert find_recipe(given) == shipped_recipes()[name]
    assert load_config("cifar10_he2015").train.iterations == 64000
    own = tmp_path / "demo.yaml"  # a file of one's own wins over the shipped recipe of that name
    own.write_text(yaml.safe_dump({"train": {"iterations": 3}}))
    assert find_recipe("demo.yaml") == Path("demo.yaml") and load_config("demo.yaml").train.iterations == 3
    with pytest.raises(FileNotFoundError, match=r"config nope not found: .*cifar10_he2015, demo, .*--list-configs"):
        find_recipe("nope")
    with pytest.raises(FileNotFoundError):
        find_recipe("elsewhere/demo.yaml")  # a path to another folder is a path, not a name


def test_list_configs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--list-configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name, path in shipped_recipes().items():
        assert any(line.split()[0] == name and describe(path) in line for line in lines), lines
    assert describe(shipped_recipes()["cifar10_he2015"]) == "The paper's CIFAR-10 recipe (He et al. 2015, section 4.2)"


def test_one_length_override_replaces_the_other_and_says_so() -> None:
    notes: list[str] = []
    cfg = load_config("demo", ["train.iterations=300"], notes=notes)
    assert (cfg.train.iterations, cfg.train.epochs) == (300, None)
    assert notes == ["train.iterations=300 replaces the recipe's train.epochs=20"]
    notes.clear()
    cfg = load_config("cifar10_he2015", ["train.epochs=3"], notes=notes)
    assert (cfg.train.iterations, cfg.train.epochs) == (None, 3)
    assert notes == ["train.epochs=3 replaces the recipe's train.iterations=64000"]
    notes.clear()
    cfg = load_config("demo", ["train.epochs=2"], notes=notes)  # the same length key: nothing to clear
    assert (cfg.train.epochs, notes) == (2, [])
    with pytest.raises(ValueError, match="exactly one of train.epochs and train.iterations"):
        load_config("demo", ["train.iterations=5", "train.epochs=2"])  # both given: still refused


def test_the_banner_names_the_cleared_length(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "demo", "train.iterations=3", "train.eval_every=3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "  train.iterations=3 replaces the recipe's train.epochs=20" in out
    assert "warning: the warm-up (20 steps) covers 100% of this 3-step run" in out  # demo warms up for one epoch
    assert len(list((tmp_path / "runs").glob("demo-*"))) == 1


def test_overrides_may_follow_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "demo", "--quiet", "train.iterations=2", "--device", "cpu",
                 "train.eval_every=2", "schedule.warmup=0"]) == 0
    assert "trained resnet20 on digits: 2 steps" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:  # anything else after an option is still refused
        main(["train", "--config", "demo", "--quiet", "--no-such-option"])
    assert exc.value.code == 2 and "unrecognized arguments: --no-such-option" in capsys.readouterr().err
