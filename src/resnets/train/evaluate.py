"""Evaluation: loss, top-1 and (with more than five classes) top-5 accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resnets.data.bundle import Loader
from resnets.train.runtime import Runtime


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


class Renormalise(nn.Module):
    """Feeds ``model`` inputs normalised with its own mean/std when the loader normalises with
    another (a converted checkpoint trained with the source's statistics): an exact per-channel
    affine map ``x * scale + shift``."""

    def __init__(self, model: nn.Module, *, loader_stats: tuple, model_stats: tuple) -> None:
        super().__init__()
        (m_in, s_in), (m_out, s_out) = [(torch.tensor(m, dtype=torch.float32), torch.tensor(s, dtype=torch.float32))
                                         for m, s in (loader_stats, model_stats)]
        self.register_buffer("scale", (s_in / s_out).view(1, -1, 1, 1))
        self.register_buffer("shift", ((m_in - m_out) / s_out).view(1, -1, 1, 1))
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, C, H, W)
        return self.model(x * self.scale.to(x.dtype) + self.shift.to(x.dtype))


def with_checkpoint_normalisation(model: nn.Module, *, loader_stats: tuple, model_stats: tuple) -> nn.Module:
    """``model`` as it is when both normalisations agree, else wrapped in :class:`Renormalise`."""
    same = all(abs(a - b) < 1e-6 for pair in zip(loader_stats, model_stats) for a, b in zip(*pair))
    return model if same else Renormalise(model, loader_stats=loader_stats, model_stats=model_stats)
