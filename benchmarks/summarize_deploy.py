"""Turn `resnets bench --suite deploy --json` files into the Markdown tables of benchmarks/RESULTS.md.

    python benchmarks/summarize_deploy.py benchmarks/results/cpu/deploy/*.json
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

# (ours, theirs): the comparisons the targets name, like with like
PAIRS: tuple[tuple[str, str, str], ...] = (
    ("fp32: ours openvino fp32 / OpenVINO f32 on torchvision's model", "ours openvino fp32",
     "openvino f32 (torchvision's model)"),
    ("fp32: ours torch fp32 / OpenVINO f32 on torchvision's model", "ours torch fp32",
     "openvino f32 (torchvision's model)"),
    ("fp32: ours torch fp32 compiled (frozen weights) / OpenVINO f32 on torchvision's model",
     "ours torch fp32 compiled", "openvino f32 (torchvision's model)"),
    ("bf16: ours torch bf16 compiled (frozen weights) / OpenVINO default (bf16)", "ours torch bf16 compiled",
     "openvino default = bf16 (torchvision's model)"),
    ("default: ours openvino bf16 (predict's default here) / OpenVINO default (bf16)", "ours openvino bf16",
     "openvino default = bf16 (torchvision's model)"),
    ("int8: ours openvino int8 / OpenVINO default (bf16)", "ours openvino int8",
     "openvino default = bf16 (torchvision's model)"),
)


def side_table(result: dict) -> list[str]:
    rows = ["| side | img/s (median) | spread | ratio to torchvision eager fp32 | paired ratio | batch-1 ms |",
            "|---|---|---|---|---|---|"]
    for name, r in result["results"].items():
        rows.append(f"| {name} | {r['median']:.1f} | {100 * r['spread']:.0f}% | **{r['ratio']:.2f}** | "
                    f"{r.get('paired_ratio', float('nan')):.2f} | {r.get('latency_ms', float('nan')):.1f} |")
    return rows


def pair_table(result: dict) -> list[str]:
    rows = ["| comparison | ratio of medians | paired ratio (median of per-repetition ratios) |", "|---|---|---|"]
    res = result["results"]
    for title, ours, theirs in PAIRS:
        if ours in res and theirs in res:
            o, t = res[ours], res[theirs]
            paired = statistics.median(a / b for a, b in zip(o["samples"], t["samples"])) if "samples" in o else float("nan")
            rows.append(f"| {title} | **{o['median'] / t['median']:.2f}** | {paired:.2f} |")
    return rows


def main() -> None:
    for path in sys.argv[1:]:
        result = json.loads(Path(path).read_text())
        cfg, env = result["config"], result["env"]
        threads = env.get("torch_threads", env.get("threads"))  # older result files name it "threads"
        print(f"#### {cfg['model']}, batch {cfg['batch']}, {cfg['image_size']}px, {threads} thread(s) "
              f"(`{Path(path).name}`; load average {env['load_average']} at start, {env['load_average_end']} at end)\n")
        print("\n".join(side_table(result)) + "\n")
        print("\n".join(pair_table(result)) + "\n")


if __name__ == "__main__":
    main()
