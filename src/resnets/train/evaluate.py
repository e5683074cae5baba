"""Evaluation: loss, top-1 and (with more than five classes) top-5 accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resnets.data.bundle import Loader
from resnets.runtime import Runtime


@torch.no_grad()
def evaluate(model: nn.Module, loader: Loader, *, runtime: Runtime) -> dict[str, float]:
    """Mean loss and accuracies of ``model`` over ``loader`` (summed over ranks)."""
    was_training = model.training
    model.eval()
    dev = runtime.device
    sums = torch.zeros(4, dtype=torch.float64, device=dev)  # loss, top-1, top-5, samples
    num_classes = 0
    for x, y in loader.epoch(0):
        with runtime.autocast():
            logits = model(runtime.prepare(x))  # (N, K)
        logits = logits.float()
        num_classes = logits.shape[1]
        top = logits.topk(min(5, num_classes), dim=1).indices  # (N, k)
        hits = top == y[:, None]
        sums += torch.stack([
            F.cross_entropy(logits, y, reduction="sum").double(),
            hits[:, 0].sum().double(),
            hits.any(dim=1).sum().double(),
            torch.tensor(float(y.numel()), dtype=torch.float64, device=dev),
        ])
    model.train(was_training)
    loss, top1, top5, n = runtime.all_reduce_sum(sums).tolist()
    if n == 0:
        raise ValueError("the evaluation split is empty")
    result = {"loss": loss / n, "acc": top1 / n, "samples": int(n)}
    if num_classes > 5:
        result["top5"] = top5 / n
    return result
