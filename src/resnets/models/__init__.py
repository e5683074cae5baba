"""Models: nn.Modules only; this package imports nothing else of resnets but the atomic write and
the download of :mod:`resnets.io` (inside the functions that write or fetch a file)."""

from resnets.models import zoo as _zoo  # noqa: F401  (registers the named architectures)
from resnets.models.blocks import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck
from resnets.models.pretrained import PretrainedWeights, list_weights, register_weights
from resnets.models.registry import ModelOptions, create_model, get_entry, list_models, register_model
from resnets.models.resnet import ResNet
from resnets.models.weights import load_pretrained, read_state_dict, save_safetensors

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ModelOptions",
    "PretrainedWeights",
    "PreActBasicBlock",
    "PreActBottleneck",
    "ResNet",
    "create_model",
    "get_entry",
    "list_models",
    "list_weights",
    "load_pretrained",
    "read_state_dict",
    "register_model",
    "register_weights",
    "save_safetensors",
]
