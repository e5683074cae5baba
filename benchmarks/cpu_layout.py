"""Which memory format should our CPU default be? Our model in NCHW against our model in
channels_last, same process, alternating (the ``resnets bench`` timing), fp32.

    PYTHONPATH=src python benchmarks/cpu_layout.py --model resnet50 --batch 16 --image-size 112 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from resnets.bench.config import BenchConfig
from resnets.bench.sources import synthetic_batches
from resnets.bench.timing import alternate
from resnets.bench.twins import get_twin
from resnets.bench.workloads import Setup, Side, build_side
from resnets.io.environment import environment
from resnets.runtime import Runtime


def sides(cfg: BenchConfig, workload: str) -> list[Side]:
    device = torch.device("cpu")
    with torch.device("meta"):
        from resnets.models import create_model

        classes = int(create_model(cfg.model).num_classes)
    batches = synthetic_batches(cfg, device=device, num_classes=classes, in_chans=3, image_size=cfg.image_size or 224)
    out = []
    for layout in (False, True):
        runtime = Runtime(device=device, autocast_dtype=None, channels_last=layout)
        setup = Setup(cfg=cfg, runtime=runtime, twin_runtime=runtime, graphs=False,
                      train_batches=batches.train, infer_batches=batches.infer, num_classes=classes, in_chans=3)
        side = build_side(setup, get_twin(cfg.model), workload, name="ours")
        out.append(Side("channels_last" if layout else "NCHW", side.description, side.step))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--image-size", type=int, default=112)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = BenchConfig(model=a.model, device="cpu", batch=a.batch, image_size=a.image_size, reps=a.reps, steps=a.steps)
    result = {"env": environment(torch.device("cpu")), "config": vars(a), "results": {}}
    for workload in ("train", "infer"):
        rates = alternate(sides(cfg, workload), warmup=1, reps=a.reps, steps=a.steps, batch=a.batch,
                          device=torch.device("cpu"))
        paired = statistics.median(c / n for c, n in zip(rates["channels_last"], rates["NCHW"]))
        result["results"][workload] = {"rates": rates, "channels_last_over_nchw": paired}
        print(f"{a.model} {workload}: NCHW {statistics.median(rates['NCHW']):.1f} img/s, channels_last "
              f"{statistics.median(rates['channels_last']):.1f} img/s, paired ratio cl/nchw {paired:.2f}")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
