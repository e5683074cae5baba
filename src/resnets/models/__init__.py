"""Models: nn.Modules only; this package imports nothing else of resnets."""

from resnets.models import zoo as _zoo  # noqa: F401  (registers the named architectures)
from resnets.models.blocks import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck
from resnets.models.registry import ModelOptions, create_model, get_entry, list_models, register_model
from resnets.models.resnet import ResNet
from resnets.models.weights import load_pretrained, read_state_dict, save_safetensors

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ModelOptions",
    "PreActBasicBlock",
    "PreActBottleneck",
    "ResNet",
    "create_model",
    "get_entry",
    "list_models",
    "load_pretrained",
    "read_state_dict",
    "register_model",
    "save_safetensors",
]
