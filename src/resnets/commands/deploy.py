"""`resnets export`: a trained checkpoint (or a named model + weights) to ONNX or TorchScript."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from torch import nn

from resnets.cli import CLIError
from resnets.deploy.export import export_onnx, export_torchscript, verify_onnx, verify_torchscript


@dataclass(frozen=True)
class Format:
    suffix: str
    # (model, path, size, fold, dynamic, metadata: class names, mean/std, input size where the format keeps them)
    export: Callable[[nn.Module, Path, tuple[int, ...], bool, bool, dict[str, str]], Path]
    verify: Callable[[nn.Module, Path, tuple[int, ...], int], float]  # (model, path, size, batch)
    verifier: str


FORMATS: dict[str, Format] = {
    "onnx": Format(
        suffix=".onnx",
        export=lambda m, p, size, fold, dynamic, meta: export_onnx(m, p, input_size=size, fold=fold,
                                                                   dynamic_batch=dynamic, metadata=meta),
        verify=lambda m, p, size, batch: verify_onnx(m, p, input_size=size, batch=batch),
        verifier="onnxruntime",
    ),
    "openvino": Format(
        suffix=".xml",
        export=lambda m, p, size, fold, dynamic, meta: _openvino().export_openvino(m, p, input_size=size, fold=fold,
                                                                                  metadata=meta),
        verify=lambda m, p, size, batch: _openvino().verify_openvino(m, p, input_size=size, batch=batch),
        verifier="openvino (f32)",
    ),
    "torchscript": Format(
        suffix=".pt",
        export=lambda m, p, size, fold, dynamic, meta: export_torchscript(m, p, input_size=size, fold=fold),
        verify=lambda m, p, size, batch: verify_torchscript(m, p, input_size=size, batch=batch),
        verifier="torch.jit.load",
    ),
}


def _openvino() -> ModuleType:
    """The OpenVINO IR writer, imported only when asked for (an optional extra)."""
    import resnets.deploy.backends.openvino_model as openvino_model

    return openvino_model


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint or a model to ONNX, OpenVINO IR or TorchScript")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="a run directory or .safetensors checkpoint written by `resnets train` (or use --model)")
    p.add_argument("--format", required=True, metavar="{" + ",".join(FORMATS) + "}", help="the file format")
    p.add_argument("--out", default=None, help="output file (default: next to the checkpoint, or ./NAME.onnx|.pt)")
    p.add_argument("--model", default=None, help="a model name, instead of a checkpoint (see `resnets models`)")
    p.add_argument("--weights", default=None,
                   help="with --model: a .safetensors or .pth state dict (torchvision's load with strict keys)")
    p.add_argument("--input-size", type=int, default=None,
                   help="image side used for tracing and checking (default: the checkpoint's or the model's)")
    p.add_argument("--no-fold", action="store_true", help="keep BatchNorm layers (default: folded into the convs)")
    p.add_argument("--static-batch", action="store_true", help="ONNX: fix the batch size instead of leaving it free")
    p.add_argument("--verify", action="store_true",
                   help="run the exported file (onnxruntime / torch.jit.load) and print the max abs difference")
    p.set_defaults(func=cmd_export)


def _model_from_checkpoint(path: str) -> tuple[nn.Module, tuple[int, ...], Path]:
    """The trained model, its (C, H, W) input size and its weights file."""
    from resnets.io.runs import open_run

    run = open_run(path)
    if "model" not in run.metadata:
        raise CLIError(
            f"{run.path} holds no model description (it was not written by `resnets train`); "
            "export bare weights with --model NAME --weights FILE"
        )
    model = run.load_model()
    side = run.image_size or model.default_input_size[1]
    return model, (model.in_chans, side, side), run.path


def _model_from_name(name: str, weights: str | None) -> nn.Module:
    """A named model, sized (classes, channels) after the weights file when one is given."""
    from resnets.models import create_model, load_pretrained, read_state_dict

    if weights is None:
        print(f"note: no --weights given; exporting {name} with random initial weights")
        return create_model(name)
    state = read_state_dict(weights)
    options: dict[str, object] = {}
    if "fc.weight" in state:
        options["num_classes"] = int(state["fc.weight"].shape[0])
    else:
        options["num_classes"] = 0
    if "conv1.weight" in state:
        options["in_chans"] = int(state["conv1.weight"].shape[1])
    model = create_model(name, **options)
    own = model.state_dict()
    wrong = [k for k in state if k in own and state[k].shape != own[k].shape]
    if wrong:
        raise CLIError(
            f"the weights in {weights} do not fit {name} ({wrong[0]} is {tuple(state[wrong[0]].shape)} in the file, "
            f"{tuple(own[wrong[0]].shape)} in the model); check --model"
        )
    load_pretrained(model, state)
    return model


def _resolve_model(args: argparse.Namespace) -> tuple[nn.Module, tuple[int, ...], Path]:
    """(model, input size, default output stem) from the checkpoint or from --model/--weights."""
    if args.checkpoint is not None and args.model is not None:
        raise CLIError("give either a CHECKPOINT or --model NAME (with --weights FILE), not both")
    if args.checkpoint is not None:
        if args.weights is not None:
            raise CLIError("--weights goes with --model NAME; a CHECKPOINT already holds its weights")
        model, size, weights_path = _model_from_checkpoint(args.checkpoint)
        return model, size, weights_path.with_suffix("")
    if args.model is None:
        raise CLIError("nothing to export: give a CHECKPOINT (run directory or .safetensors) or --model NAME")
    model = _model_from_name(args.model, args.weights)
    return model, tuple(model.default_input_size), Path(args.model)


def _deploy_metadata(args: argparse.Namespace, size: tuple[int, ...]) -> dict[str, str]:
    """The input size, and from a checkpoint its class names, mean/std and model name."""
    import json

    from resnets.deploy.export import deploy_metadata
    from resnets.io.runs import open_run

    if args.checkpoint is None:
        return deploy_metadata(input_size=size, model_name=args.model)
    meta = open_run(args.checkpoint).metadata
    values = {k: json.loads(meta[k]) for k in ("classes", "mean", "std") if k in meta}
    return deploy_metadata(input_size=size, class_names=values.get("classes"), mean=values.get("mean"),
                           std=values.get("std"), model_name=meta.get("model"))


def cmd_export(args: argparse.Namespace) -> int:
    fmt = FORMATS.get(args.format)
    if fmt is None:
        raise CLIError(f"unknown --format {args.format!r}; choose one of {', '.join(FORMATS)}")
    model, size, stem = _resolve_model(args)
    if args.input_size is not None:
        size = (size[0], args.input_size, args.input_size)
    out = Path(args.out) if args.out else stem.with_name(stem.name + fmt.suffix)
    if out.is_dir():  # --out DIR: the default file name, in that directory
        out = out / (stem.name + fmt.suffix)
    base = next(p for p in (out.parent, *out.parent.parents) if p.exists())  # the export makes the rest
    if not base.is_dir() or not os.access(base, os.W_OK):  # checked before the (slow) export starts
        raise CLIError(f"cannot write {out}: {base} is not a writable directory; "
                       "choose a writable place with --out FILE")
    try:
        path = fmt.export(model, out, size, not args.no_fold, not args.static_batch, _deploy_metadata(args, size))
        print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB; input (N, {size[0]}, {size[1]}, {size[2]}), "
              f"{'BN folded' if not args.no_fold else 'BN kept'}"
              f"{', dynamic batch' if args.format == 'onnx' and not args.static_batch else ''})")
        if args.verify:
            batch = 2 if args.static_batch else 3  # another batch size than the traced one, where free
            diff = fmt.verify(model, path, size, batch)
            print(f"verified with {fmt.verifier}: max abs difference {diff:.3g} against the PyTorch model (fp32)")
    except ImportError as exc:
        raise CLIError(str(exc)) from exc
    except PermissionError as exc:
        raise CLIError(f"cannot write {exc.filename or out}: {exc.strerror}; choose a writable place with --out FILE") from None
    return 0

