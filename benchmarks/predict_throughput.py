"""Throughput of `resnets predict`'s path: image files -> decode -> transform -> model -> top-k.

Compares, on the same image files in one process (the order of variants alternates over
repetitions; the median is reported):
  per-image   the eval model, one image per forward pass (the naive loop)
  batched     the eval model, batches of --batch images
  folded      BN folded into the convolutions (resnets.deploy.inference_model), batched:
              what `resnets predict` runs
  compiled    folded and torch.compile'd (with --compile)

    python benchmarks/predict_throughput.py --model resnet18 --size 224 --images 128 --batch 32
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from resnets import create_model
from resnets.deploy import inference_model
from resnets.deploy.predict import Predictor, predict
from resnets.io.environment import environment


def write_images(folder: Path, *, count: int, size: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"img{i:04d}.jpg"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


def calibrated(name: str, size: int) -> torch.nn.Module:
    """Random weights with BN statistics from a few batches, as a trained model would have."""
    model = create_model(name, num_classes=10)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, size, size))
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    model = calibrated(args.model, args.size)
    common = dict(classes=[str(i) for i in range(10)], image_size=args.size, in_chans=3,
                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), crop_fraction=1.0, device=device)
    variants = {
        "per-image": (Predictor(model=model, **common), 1),
        "batched": (Predictor(model=model, **common), args.batch),
        "folded": (Predictor(model=inference_model(model, device=device), **common), args.batch),
    }
    if args.compile:
        variants["compiled"] = (Predictor(model=inference_model(model, device=device, compile=True), **common), args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(Path(tmp), count=args.images, size=args.size)
        for predictor, batch in variants.values():  # warm-up (and compilation)
            predict(predictor, paths[: max(batch, 2)], topk=1, batch_size=batch)
        times: dict[str, list[float]] = {k: [] for k in variants}
        order = list(variants)
        for r in range(args.repeats):
            for name in order if r % 2 == 0 else order[::-1]:
                predictor, batch = variants[name]
                start = time.perf_counter()
                predict(predictor, paths, topk=1, batch_size=batch)
                times[name].append(time.perf_counter() - start)
    rates = {k: args.images / statistics.median(v) for k, v in times.items()}
    env = environment(torch.device("cpu"))
    print(f"{args.model} {args.size}px, {args.images} JPEG files, batch {args.batch}; torch {env['torch']}, "
          f"torchvision {env['torchvision']}, {env['torch_threads']} threads, load {env['load_average']}, "
          f"{env['cpu_model']}")
    for name, rate in rates.items():
        print(f"  {name:<10} {rate:8.1f} img/s   x{rate / rates['per-image']:.2f} vs per-image")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "env": env, "img_per_s": rates}, indent=2))


if __name__ == "__main__":
    main()
