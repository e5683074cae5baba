"""Top-1 of every CPU deployment path on a run's held-out validation split, and how often each
agrees with the fp32 torch model (the accuracy half of benchmarks/RESULTS.md's deployment table).

    .venv/bin/python benchmarks/deploy_agreement.py RUN_DIR [--calibrate 300] [--json PATH]

int8 is calibrated on the first N images of the run's training split (as `resnets quantize`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch

from resnets.bench.deploy import deployment_paths
from resnets.data import load_data
from resnets.deploy.quantize import calibration_batches, top1
from resnets.io.runs import open_run
from resnets.train.configio import config_from_mapping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--calibrate", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run = open_run(args.run)
    cfg = config_from_mapping(run.recipe())
    model = run.load_model().eval()
    bundle = load_data(dataclasses.replace(cfg.data, augment="none", device_resident="no"))
    assert bundle.val is not None, "the run has no validation split"
    size = (bundle.in_chans, bundle.image_size, bundle.image_size)
    calibration = calibration_batches((x for x, _ in bundle.train.epoch(0)), count=args.calibrate)
    ref, labels = top1(model, bundle.val.epoch(0))
    rows = {"torch fp32 (eager, BN kept)": {"top1": float((ref == labels).float().mean()), "agreement": 1.0}}
    for name, built in deployment_paths(model, input_size=size, calibration=calibration).items():
        pred, _ = top1(built, bundle.val.epoch(0))
        rows[name] = {"top1": float((pred == labels).float().mean()), "agreement": float((pred == ref).float().mean())}
    result = {"run": str(run.path), "dataset": cfg.data.name, "root": cfg.data.root, "val_images": len(labels),
              "calibration_images": sum(len(b) for b in calibration), "rows": rows}
    print(f"{run.path}: {cfg.data.name} validation split, {len(labels)} images; int8 calibrated on "
          f"{result['calibration_images']} training images")
    for name, r in rows.items():
        print(f"  {name:<30} top-1 {100 * r['top1']:6.2f}%  agrees with fp32 on {100 * r['agreement']:6.2f}%")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
