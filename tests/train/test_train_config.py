import pytest
import yaml

from resnets.train import ConfigError, TrainConfig, dump_config, load_config
from resnets.train.configio import config_from_mapping, parse_overrides


def test_overrides_reach_every_section_with_types(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: resnet20}\noptim: {lr: 0.1}\ntrain: {epochs: 3}\n")
    cfg = load_config(recipe, ["optim.lr=0.05", "model.name=resnet32", "data.batch_size=64",
                               "schedule.milestones=[2, 4]", "data.synthetic_shape=[1, 8, 8]",
                               "train.resume=true", "optim.grad_clip=null"])
    assert cfg.optim.lr == 0.05 and cfg.model.name == "resnet32" and cfg.data.batch_size == 64
    assert cfg.schedule.milestones == [2.0, 4.0]
    assert cfg.data.synthetic_shape == (1, 8, 8)
    assert cfg.train.resume is True and cfg.optim.grad_clip is None
    assert cfg.train.epochs == 3  # untouched file value kept


def test_int_is_accepted_for_float_and_yaml_exponent_strings_parse():
    cfg = config_from_mapping({"train": {"epochs": 1}, "optim": {"lr": 1, "weight_decay": "1e-4"}})
    assert isinstance(cfg.optim.lr, float) and cfg.optim.lr == 1.0
    assert cfg.optim.weight_decay == pytest.approx(1e-4)


@pytest.mark.parametrize("override, fragment", [
    ("data.batch_size=sixty", "data.batch_size"),
    ("train.epochs=2.5", "train.epochs"),
    ("train.compile=yes-please", "train.compile"),
    ("model.name=[1]", "model.name"),
])
def test_wrong_types_are_errors_naming_the_key(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        config_from_mapping({"train": {"epochs": 1}}, [override])


@pytest.mark.parametrize("override, suggestion", [
    ("optim.lrr=0.1", "optim.lr"),
    ("optm.lr=0.1", "optim"),
    ("data.batchsize=3", "data.batch_size"),
    ("train.epoch=3", "train.epochs"),
])
def test_unknown_keys_are_errors_with_close_matches(override, suggestion):
    with pytest.raises(ConfigError) as info:
        config_from_mapping({"train": {"epochs": 1}}, [override])
    assert "unknown config key" in str(info.value)
    assert f"'{suggestion}'" in str(info.value)


def test_unknown_key_in_yaml_is_an_error(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train: {epochs: 1}\nschedule: {milestone: [1]}\n")
    with pytest.raises(ConfigError, match="schedule.milestones"):
        load_config(recipe)


def test_cross_field_rules():
    with pytest.raises(ValueError, match="exactly one of train.epochs and train.iterations"):
        config_from_mapping({"train": {"epochs": 1, "iterations": 10}})
    with pytest.raises(ValueError, match="train.precision"):
        config_from_mapping({"train": {"epochs": 1, "precision": "fp8"}})
    with pytest.raises(ValueError, match="augment"):  # the data section's own checks
        config_from_mapping({"train": {"epochs": 1}, "data": {"augment": "mixup"}})


def test_malformed_override():
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["optim.lr"])


def test_dump_round_trips(tmp_path):
    cfg = config_from_mapping({"train": {"iterations": 7}}, ["data.synthetic_shape=[1, 4, 4]", "optim.betas=[0.8, 0.9]"])
    again = config_from_mapping(yaml.safe_load(dump_config(cfg)))
    assert again == cfg and isinstance(again, TrainConfig)


@pytest.mark.parametrize("name", ["demo", "cifar10_he2015", "imagenet_v1", "finetune_example"])
def test_shipped_recipes_load(name):
    from resnets.train.recipes import shipped_recipes

    assert load_config(shipped_recipes()[name]).model.name
