import pytest
import torch
from torchvision.ops import FrozenBatchNorm2d

from resnets import create_model
from resnets.deploy import Backbone, fpn_backbone
from resnets.models import save_safetensors

from deploy_helpers import load_example


@pytest.mark.parametrize("name,output_stride", [("resnet18", None), ("resnet18", 8), ("resnet20", None)])
def test_backbone_maps_match_their_declared_channels_and_strides(name: str, output_stride: int | None) -> None:
    model = create_model(name, num_classes=0, output_stride=output_stride)
    body = Backbone(model)
    side = 64
    maps = body(torch.randn(2, 3, side, side))
    assert list(maps) == model.stage_names == body.out_stages
    for (key, fmap), channels, stride in zip(maps.items(), body.out_channels, body.strides):
        assert fmap.shape == (2, channels, side // stride, side // stride), key


def test_backbone_equals_forward_stages_and_stops_early() -> None:
    model = create_model("resnet18", num_classes=0).eval()
    body = Backbone(model, out_stages=("layer2",))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model.forward_stages(x)
        ran: list[str] = []
        hooks = [getattr(model, n).register_forward_hook(lambda *_a, n=n: ran.append(n)) for n in model.stage_names]
        got = body(x)
        for h in hooks:
            h.remove()
    assert list(got) == ["layer2"]
    assert torch.equal(got["layer2"], ref["layer2"])
    assert ran == ["layer1", "layer2"]  # layer3/4 are not computed


@pytest.mark.parametrize("stages,message", [(("layer5",), "choose from"), (("layer3", "layer1"), "network order")])
def test_bad_stages_are_refused(stages, message) -> None:
    with pytest.raises(ValueError, match=message):
        Backbone(create_model("resnet18"), out_stages=stages)


def test_fpn_backbone_outputs_and_frozen_stages() -> None:
    fpn = fpn_backbone("resnet18", out_channels=32, trainable_stages=3)
    out = fpn(torch.randn(2, 3, 64, 64))
    assert list(out) == ["0", "1", "2", "3", "pool"] and fpn.out_channels == 32
    assert [v.shape[-1] for v in out.values()] == [16, 8, 4, 2, 1]
    assert all(v.shape[:2] == (2, 32) for v in out.values())
    model = fpn.body.model
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"layer2", "layer3", "layer4"}
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())


def test_fpn_backbone_loads_weights_without_the_head(tmp_path) -> None:
    source = create_model("resnet18", num_classes=10)
    path = tmp_path / "w.safetensors"
    save_safetensors(source.state_dict(), path)
    fpn = fpn_backbone("resnet18", weights=path, frozen_bn=False)
    assert torch.equal(fpn.body.model.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
    with pytest.raises(ValueError, match="trainable_stages"):
        fpn_backbone("resnet18", trainable_stages=6)


def test_detection_example_trains_and_detects() -> None:
    ex = load_example("detection_fpn")
    torch.manual_seed(0)
    model = ex.build_detector(num_classes=3, image_size=64)
    images, targets = ex.synthetic_batch(batch=2, image_size=64, num_classes=3)
    losses = ex.train_step(model, images, targets)
    assert {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    grad = model.backbone.body.model.conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    detections = ex.detect(model, images)
    assert len(detections) == 2
    for det in detections:
        k = det["boxes"].shape[0]
        assert det["boxes"].shape == (k, 4) and det["labels"].shape == det["scores"].shape == (k,)
        assert bool(((det["labels"] >= 1) & (det["labels"] < 3)).all())


def test_segmentation_example_trains() -> None:
    ex = load_example("segmentation_head")
    torch.manual_seed(0)
    model = ex.Segmenter(num_classes=4)
    assert model.backbone.strides == [8]
    images, masks = ex.synthetic_batch(batch=2, image_size=64, num_classes=4)
    loss = ex.train_step(model, images, masks)
    assert torch.isfinite(loss)
    grad = model.backbone.model.conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    with torch.no_grad():
        assert model.eval()(images).shape == (2, 4, 64, 64)
