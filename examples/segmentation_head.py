"""Semantic segmentation: a dilated resnets ResNet-18 (output stride 8) + torchvision's DeepLabHead.

The last two stages dilate instead of striding, so layer4 keeps 1/8 of the input
resolution; the head's logits are upsampled back to the input. Runs one training
step on synthetic images and masks.

    python examples/segmentation_head.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.segmentation.deeplabv3 import DeepLabHead

from resnets import create_model
from resnets.deploy import Backbone


class Segmenter(nn.Module):
    """Backbone (layer4 at stride 8) -> DeepLabHead -> bilinear upsampling to the input size."""

    def __init__(self, *, num_classes: int, backbone: str = "resnet18") -> None:
        super().__init__()
        self.backbone = Backbone(create_model(backbone, num_classes=0, output_stride=8), out_stages=("layer4",))
        self.head = DeepLabHead(self.backbone.out_channels[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:  # x: (N, 3, H, W)
        features = self.backbone(x)["layer4"]  # (N, 512, H/8, W/8)
        logits = self.head(features)  # (N, K, H/8, W/8)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)  # (N, K, H, W)


def synthetic_batch(*, batch: int = 2, image_size: int = 64, num_classes: int = 4, seed: int = 0
                    ) -> tuple[Tensor, Tensor]:
    """Images whose mask is a coarse random class map, the class also shifting the image's brightness."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, num_classes, (batch, 1, 4, 4), generator=g).float()
    masks = F.interpolate(coarse, size=(image_size, image_size), mode="nearest").long()[:, 0]  # (N, H, W)
    images = torch.rand(batch, 3, image_size, image_size, generator=g) + masks[:, None].float() / num_classes
    return images, masks


def train_step(model: Segmenter, images: Tensor, masks: Tensor) -> Tensor:
    """One forward + backward (pixel-wise cross-entropy); returns the loss."""
    model.train()
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(images), masks)
    loss.backward()
    return loss


def main() -> None:
    torch.manual_seed(0)
    model = Segmenter(num_classes=4)
    images, masks = synthetic_batch()
    loss = train_step(model, images, masks)
    with torch.no_grad():
        logits = model.eval()(images)
    classes = logits.argmax(1).unique().tolist()
    print(f"loss {loss.detach().item():.4f}; logits {tuple(logits.shape)}; classes per pixel {classes}")


if __name__ == "__main__":
    main()
