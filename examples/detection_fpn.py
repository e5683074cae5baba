"""A resnets ResNet-18 + torchvision's FPN inside torchvision's Faster R-CNN.

Runs one training step (loss dict, backward) and one evaluation pass (detections)
on a small synthetic batch: boxes of random sizes on noise images. To train for real,
swap in a detection dataset and load ImageNet weights with ``weights=FILE``.

    python examples/detection_fpn.py
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.models.detection import FasterRCNN

from resnets.deploy import fpn_backbone


def build_detector(*, num_classes: int = 3, image_size: int = 128, trainable_stages: int = 5) -> FasterRCNN:
    """Faster R-CNN on a resnet18 + FPN backbone. From scratch every stage trains (5); with
    pretrained weights torchvision's default is 3 (the stem and layer1 stay frozen)."""
    backbone = fpn_backbone("resnet18", out_channels=64, trainable_stages=trainable_stages)
    return FasterRCNN(backbone, num_classes=num_classes, min_size=image_size, max_size=image_size)


def synthetic_batch(*, batch: int = 2, image_size: int = 128, num_classes: int = 3, seed: int = 0
                    ) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    """Noise images with 1-3 random boxes each; labels in 1..num_classes-1 (0 is background)."""
    g = torch.Generator().manual_seed(seed)
    images = [torch.rand(3, image_size, image_size, generator=g) for _ in range(batch)]  # (3, H, W) each
    targets = []
    for _ in range(batch):
        n = int(torch.randint(1, 4, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * image_size * 0.6  # top-left corners
        wh = 8 + torch.rand(n, 2, generator=g) * image_size * 0.35
        boxes = torch.cat([xy, (xy + wh).clamp(max=image_size)], dim=1)  # (n, 4) x1, y1, x2, y2
        labels = torch.randint(1, num_classes, (n,), generator=g)
        targets.append({"boxes": boxes, "labels": labels})
    return images, targets


def train_step(model: FasterRCNN, images: list[Tensor], targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """One forward + backward in train mode; returns the loss dict (gradients are left on the model)."""
    model.train()
    model.zero_grad(set_to_none=True)
    losses = model(images, targets)
    sum(losses.values()).backward()
    return losses


@torch.no_grad()
def detect(model: FasterRCNN, images: list[Tensor]) -> list[dict[str, Tensor]]:
    """Eval mode: one dict per image with boxes (K, 4), labels (K,) and scores (K,)."""
    model.eval()
    return model(images)


def main() -> None:
    torch.manual_seed(0)
    model = build_detector()
    images, targets = synthetic_batch()
    losses = train_step(model, images, targets)
    print("losses:", {k: round(v.detach().item(), 4) for k, v in losses.items()})
    grad = model.backbone.body.model.conv1.weight.grad
    print("stem conv gradient norm:", float(grad.norm()) if grad is not None else None)
    for i, det in enumerate(detect(model, images)):
        print(f"image {i}: {len(det['boxes'])} detections")


if __name__ == "__main__":
    main()
