"""Does ``train.compile=true`` pay off on the CPU? Our training step (the engine's, as ``resnets
bench`` builds it) compiled against the same step eager, same process, alternating (the bench's
timing), in fp32 and in bf16; the compile time (the first compiled step) is reported apart.

    PYTHONPATH=src python benchmarks/cpu_compile.py --model resnet20 --batch 128 --threads 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from resnets.bench.config import BenchConfig
from resnets.bench.sources import synthetic_batches
from resnets.bench.timing import alternate
from resnets.bench.twins import get_twin
from resnets.bench.workloads import Setup, Side, build_side
from resnets.io.environment import environment
from resnets.models import create_model


def sides(model: str, batch: int, precision: str) -> tuple[list[Side], dict[str, float]]:
    """[eager, compiled] training sides of our ``model``, and each one's first step in seconds."""
    out, first = [], {}
    for compile_mode in ("off", "ours"):
        cfg = BenchConfig(model=model, device="cpu", batch=batch, precision=precision, channels_last="on",
                          compile=compile_mode)
        runtime = cfg.runtime()
        with torch.device("meta"):
            classes = int(create_model(model).num_classes)
        size = int(create_model(model).default_input_size[1]) if cfg.image_size is None else cfg.image_size
        batches = synthetic_batches(cfg, device=runtime.device, num_classes=classes, in_chans=3, image_size=size)
        setup = Setup(cfg=cfg, runtime=runtime, twin_runtime=runtime, graphs=False, train_batches=batches.train,
                      infer_batches=batches.infer, num_classes=classes, in_chans=3)
        side = build_side(setup, get_twin(model), "train", name="ours")
        name = "compiled" if compile_mode == "ours" else "eager"
        start = time.perf_counter()
        side.step()  # compiles on the first call
        first[name] = time.perf_counter() - start
        out.append(Side(name, side.description, side.step))
    return out, first


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    result = {"env": environment(torch.device("cpu")), "config": vars(a), "results": {}}
    for precision in a.precisions:
        pair, first = sides(a.model, a.batch, precision)
        rates = alternate(pair, warmup=a.warmup, reps=a.reps, steps=a.steps, batch=a.batch, device=torch.device("cpu"))
        paired = statistics.median(c / e for c, e in zip(rates["compiled"], rates["eager"]))
        eager, compiled = statistics.median(rates["eager"]), statistics.median(rates["compiled"])
        result["results"][precision] = {"rates": rates, "first_step_s": first, "compiled_over_eager": paired,
                                        "descriptions": {s.name: s.description for s in pair}}
        print(f"{a.model} batch {a.batch} {precision}: eager {eager / a.batch:.2f} steps/s, compiled "
              f"{compiled / a.batch:.2f} steps/s, paired ratio compiled/eager {paired:.2f}; first step "
              f"eager {first['eager']:.1f} s, compiled {first['compiled']:.1f} s (compile)", flush=True)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
