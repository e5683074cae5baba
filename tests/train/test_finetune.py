import torch
import torchvision
from train_helpers import tiny_recipe

from resnets.models import create_model
from resnets.train import config_from_mapping, run
from resnets.train.finetune import freeze, load_finetune_source


def test_finetune_from_a_torchvision_state_dict_file(tmp_path):
    torch.manual_seed(1)
    source = torchvision.models.resnet18(num_classes=1000).state_dict()
    path = tmp_path / "resnet18-tv.pth"
    torch.save(source, path)

    recipe = tiny_recipe(
        tmp_path / "runs",
        model={"name": "resnet18"},
        data={"synthetic_shape": [3, 32, 32], "synthetic_classes": 4, "synthetic_size": 64, "val_fraction": 0.25},
        train={"iterations": 2, "eval_every": 0},
        finetune={"source": str(path), "freeze_stages": 4},
    )
    result = run(config_from_mapping(recipe), device="cpu", quiet=True)
    model = result.model
    assert model.fc.out_features == 4 and model.fc.weight.shape == (4, 512)
    own = model.state_dict()
    backbone = [k for k in source if not k.startswith("fc.")]
    assert backbone and all(torch.equal(own[k], source[k]) for k in backbone)  # frozen: BN stats too
    assert not torch.equal(own["fc.weight"][:4], source["fc.weight"][:4])


def test_freeze_keeps_later_stages_trainable_and_same_head_loads_fully(tmp_path):
    torch.manual_seed(2)
    src = create_model("resnet20", num_classes=10, in_chans=1)
    path = tmp_path / "w.pth"
    torch.save(src.state_dict(), path)
    model = create_model("resnet20", num_classes=10, in_chans=1)
    load_finetune_source(model, path)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in src.state_dict().items())  # head kept too

    frozen = freeze(model, 1)
    assert model.conv1 in frozen and model.layer1 in frozen and model.layer2 not in frozen
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters()) and model.fc.weight.requires_grad
    assert freeze(create_model("resnet20"), -1) == []
