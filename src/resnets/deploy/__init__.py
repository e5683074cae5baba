"""Deployment: BN folding, ONNX / TorchScript export, backbones, fast inference."""

from resnets.deploy.backbone import Backbone, FPNBackbone, fpn_backbone
from resnets.deploy.export import export_onnx, export_torchscript, run_onnx, verify_onnx, verify_torchscript
from resnets.deploy.fold import fold_bn
from resnets.deploy.inference import InferenceModel, inference_model

__all__ = [
    "Backbone",
    "FPNBackbone",
    "InferenceModel",
    "export_onnx",
    "export_torchscript",
    "fold_bn",
    "fpn_backbone",
    "inference_model",
    "run_onnx",
    "verify_onnx",
    "verify_torchscript",
]
