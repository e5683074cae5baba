"""Feature-map models, as timm's ``features_only=True`` builds them.

:class:`FeatureNet` holds a ResNet's stem and stages under their own names (so its state
dict is the network's without the head, and torchvision or project weights load into it)
and returns the maps at ``out_indices``: 0 the stem, i stage i, as timm numbers them.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from resnets.models.resnet import ResNet

HEAD = ("avgpool", "fc", "final_norm", "final_act")


class FeatureInfo(list):  # type: ignore[type-arg]
    """The chosen maps' descriptions (dicts with timm's and our keys), with timm's accessors."""

    def channels(self) -> list[int]:
        return [int(f["num_chs"]) for f in self]

    def reduction(self) -> list[int]:
        return [int(f["reduction"]) for f in self]

    def module_name(self) -> list[str]:
        return [str(f["module"]) for f in self]


class FeatureNet(nn.Module):
    """The maps of ``out_indices`` of ``model`` as a list of (N, C_i, H/r_i, W/r_i) tensors."""

    def __init__(self, model: ResNet, *, out_indices: Sequence[int]) -> None:
        super().__init__()
        every = [model.stem_info, *model.feature_info]
        indices = [int(i) for i in out_indices]
        if not indices or sorted(set(indices)) != indices or indices[0] < 0 or indices[-1] >= len(every):
            raise ValueError(
                f"out_indices {tuple(out_indices)} must be increasing, distinct and in 0..{len(every) - 1} "
                "(0: the stem, i: stage i)"
            )
        self.out_indices = tuple(indices)
        self.feature_info = FeatureInfo(every[i] for i in indices)
        last_stage = indices[-1]
        for name, child in model.named_children():
            if name not in HEAD and not (name.startswith("layer") and int(name[5:]) > last_stage):
                self.add_module(name, child)  # the same modules: keys as in the network
        object.__setattr__(self, "_net", model)  # not a submodule: no second copy of the keys

    def train(self, mode: bool = True) -> "FeatureNet":
        super().train(mode)
        self._net.training = mode  # gradient checkpointing reads the network's flag
        return self

    def forward(self, x: Tensor) -> list[Tensor]:
        return self._net.forward_intermediates(x, indices=self.out_indices)
