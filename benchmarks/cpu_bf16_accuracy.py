"""Does CPU training in bf16 keep the accuracy? Final test accuracy of ``train.precision=bf16``
against ``fp32`` over seeds, on the digits (the demo recipe) and Fashion-MNIST (a shortened
recipe), through ``resnets.train.run``; the two precisions alternate seed by seed, so that a
shared machine's load falls on both alike.

    PYTHONPATH=src python benchmarks/cpu_bf16_accuracy.py --seeds 0 1 2 --out runs/bf16-accuracy

Prints a Markdown table (mean ± std (min-max) per precision, and whether each bf16 run lies
within the fp32 seeds' range) and writes it, with every run's figures, as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from resnets.io.environment import environment
from resnets.studies.bands import band
from resnets.train import load_config, run

FASHION = "/usr/share/datasets/fashion-mnist"
# dataset -> overrides of the demo recipe (the recipe's own settings for the digits)
RECIPES: dict[str, list[str]] = {
    "digits": [],
    "fashion-mnist": [  # 14x14, one epoch of 60k at batch 64 (938 steps), cosine to zero
        "data.name=fashion-mnist", f"data.root={FASHION}", "data.image_size=14", "data.augment=none",
        "data.val_fraction=0.02", "data.batch_size=64", "data.eval_batch_size=1000",
        "train.epochs=null", "train.iterations=938", "train.eval_every=469", "schedule.unit=iter",
        "schedule.warmup=20",
    ],
}


def one_run(dataset: str, precision: str, seed: int, out: Path) -> dict[str, float]:
    cfg = load_config("demo", [*RECIPES[dataset], f"train.precision={precision}", f"train.seed={seed}",
                               "train.threads=1", "train.tensorboard=false", f"train.out_dir={out}",
                               f"train.name={dataset}-{precision}-s{seed}"])
    result = run(cfg, device="cpu", quiet=True)
    assert result.test is not None
    return {"acc": float(result.test["acc"]), "elapsed_s": round(result.elapsed_s, 1), "samples": result.test["samples"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--datasets", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    p.add_argument("--out", type=Path, default=Path("runs/bf16-accuracy"))
    a = p.parse_args()
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    for dataset in a.datasets:
        runs[dataset] = {"fp32": [], "bf16": []}
        for seed in a.seeds:
            for precision in ("fp32", "bf16") if seed % 2 == 0 else ("bf16", "fp32"):
                r = one_run(dataset, precision, seed, a.out)
                runs[dataset][precision].append({"seed": seed, **r})
                print(f"{dataset} {precision} seed {seed}: test acc {100 * r['acc']:.2f}% ({r['elapsed_s']} s)", flush=True)
    lines = ["| data | fp32 test acc | bf16 test acc | bf16 runs within the fp32 range | bf16 mean within it |",
             "|---|---|---|---|---|"]
    for dataset, by in runs.items():
        b32, b16 = band([r["acc"] for r in by["fp32"]]), band([r["acc"] for r in by["bf16"]])
        inside = sum(b32.lo <= v <= b32.hi for v in b16.values)
        lines.append(f"| {dataset} | {b32.text()} | {b16.text()} | {inside} of {b16.n} | "
                     f"{'yes' if b32.lo <= b16.mean <= b32.hi else 'no'} |")
    print("\n".join(lines))
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "accuracy.json").write_text(json.dumps({
        "env": environment(torch.device("cpu")), "seeds": a.seeds, "recipes": RECIPES, "runs": runs,
        "table": lines}, indent=2) + "\n")


if __name__ == "__main__":
    main()
