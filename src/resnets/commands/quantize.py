"""`resnets quantize RUN --calibrate N`: int8 post-training quantization of a trained run."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from resnets.cli import CLIError
from resnets.deploy.quantize import MAX_DROP_POINTS, QUANTIZE_BACKENDS, SUFFIXES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quantize", help="int8 post-training quantization of a run, with top-1 before and after",
        description="Calibrates an int8 model on N training images (or a folder), measures top-1 of the fp32 and "
                    "int8 models on the run's held-out validation split, and writes the int8 model unless it "
                    f"loses more than --max-drop points (default {MAX_DROP_POINTS}).",
    )
    p.add_argument("run", metavar="RUN", help="a run directory (best, else last checkpoint) or a .safetensors file")
    p.add_argument("--calibrate", type=int, default=300, metavar="N", help="calibration images (default 300)")
    p.add_argument("--images", default=None, metavar="FOLDER",
                   help="calibrate on the images in FOLDER instead of the run's training split")
    p.add_argument("--backend", default="openvino", choices=QUANTIZE_BACKENDS,
                   help="openvino (NNCF, IR .xml/.bin; the faster here) or onnxruntime (static QDQ .onnx)")
    p.add_argument("--max-drop", type=float, default=MAX_DROP_POINTS, metavar="POINTS",
                   help="refuse to write a model whose top-1 falls by more than this many points")
    p.add_argument("--force", action="store_true", help="write the model even past --max-drop")
    p.add_argument("--out", default=None, help="output file (default: RUN/int8.xml or RUN/int8.onnx)")
    p.set_defaults(func=cmd_quantize)


def cmd_quantize(args: argparse.Namespace) -> int:
    from resnets.data import load_data
    from resnets.deploy.predict import load_predictor
    from resnets.deploy.quantize import calibration_batches, folder_images, quantize, save_int8
    from resnets.io.runs import open_run
    from resnets.train.configio import config_from_mapping

    run = open_run(args.run)
    path = run.path
    cfg = config_from_mapping(run.recipe())
    model = run.load_model()
    bundle = load_data(dataclasses.replace(cfg.data, augment="none", device_resident="no"))
    if bundle.val is None:
        raise CLIError(f"the run's dataset {cfg.data.name!r} has no held-out validation split "
                       "(data.val_fraction=0); train with a validation split to check the int8 model")
    if args.images is not None:
        source = folder_images(args.images, load_predictor(path).transform)
    else:
        source = (x for x, _ in bundle.train.epoch(0))
    calibration = calibration_batches(source, count=args.calibrate)
    size = (bundle.in_chans, bundle.image_size, bundle.image_size)
    val = bundle.val
    try:
        int8, acc = quantize(model, backend=args.backend, calibration=calibration, input_size=size,
                             held_out=lambda: val.epoch(0))
    except ImportError as exc:
        raise CLIError(str(exc)) from exc
    n_cal = sum(len(b) for b in calibration)
    source = f"images from {args.images}" if args.images else "training images"
    print(f"{path}: int8 ({args.backend}, calibrated on {n_cal} {source}); "
          f"validation split, {acc.samples} images: top-1 {100 * acc.before:.2f}% fp32 -> {100 * acc.after:.2f}% int8 "
          f"({acc.change_points:+.2f} points), same class on {100 * acc.agreement:.2f}%")
    if acc.drop_points > args.max_drop and not args.force:
        raise CLIError(f"the int8 model loses {acc.drop_points:.2f} points of top-1, more than --max-drop "
                       f"{args.max_drop:g}; nothing written (calibrate on more images, or pass --force)")
    out = Path(args.out) if args.out else path.parent / ("int8" + SUFFIXES[args.backend])
    for written in save_int8(int8, out):
        print(f"wrote {written}")
    return 0
