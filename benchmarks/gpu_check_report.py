"""Collect benchmarks/gpu_check.sh's outputs into OUT/gpu_check.json and OUT/gpu_check.md (UNTESTED on a GPU).

    python benchmarks/gpu_check_report.py OUT_DIR
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any


def _status(out: Path) -> dict[str, str]:
    lines = (out / "status.txt").read_text().splitlines() if (out / "status.txt").is_file() else []
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _bench(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _pytest_line(path: Path) -> str:
    if not path.is_file():
        return "not run"
    lines = [line for line in path.read_text().splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", line)]
    return lines[-1].strip("= ") if lines else "no summary line"


def _final_run(out: Path) -> dict[str, Any] | None:
    finals = sorted((out / "runs").glob("*/final.json"))
    return json.loads(finals[-1].read_text()) if finals else None


def collect(out: Path) -> dict[str, Any]:
    status = _status(out)
    r50 = _bench(out / "resnet50_b256.json")
    r20 = _bench(out / "resnet20_b128_graphed.json")
    final = _final_run(out)
    return {"status": status, "pytest_gpu": _pytest_line(out / "pytest_gpu.txt"), "resnet50_b256": r50,
            "resnet20_b128_graphed": r20, "train_resnet20_1k": final}


def table(result: dict[str, Any]) -> str:
    rows = ["| check | figure | status |", "|---|---|---|"]
    status = result["status"]
    rows.append(f"| gpu tests | {result['pytest_gpu']} | {status.get('pytest_gpu', 'not run')} |")
    r50 = result["resnet50_b256"]
    for workload in ("train", "infer"):
        if r50 and workload in r50["results"]:
            w = r50["results"][workload]
            fig = (f"ours {w['ours']['img_per_s']:.0f} img/s, torchvision eager {w['theirs']['img_per_s']:.0f} img/s, "
                   f"ratio {w['ratio']:.2f} (paired {w.get('paired_ratio', float('nan')):.2f})")
        else:
            fig = "n/a"
        rows.append(f"| ResNet-50 {workload}, bf16, channels_last, batch 256 | {fig} | "
                    f"{status.get('resnet50_b256', 'not run')} |")
    r20 = result["resnet20_b128_graphed"]
    if r20 and "train" in r20["results"]:
        w = r20["results"]["train"]
        fig = (f"{w['ours']['img_per_s'] / 128:.1f} steps/s ours (CUDA graph), "
               f"{w['theirs']['img_per_s'] / 128:.1f} plain loop, ratio {w['ratio']:.2f}")
    else:
        fig = "n/a"
    rows.append(f"| ResNet-20 whole-step CUDA graph, batch 128 | {fig} | {status.get('resnet20_b128_graphed', 'not run')} |")
    final = result["train_resnet20_1k"]
    fig = "n/a"
    if final:
        test = final.get("test") or {}
        fig = (f"{status.get('train_resnet20_1k_wall_s', '?')} s wall (process start to end), "
               f"test acc {100 * test.get('acc', float('nan')):.2f}%")
    rows.append(f"| ResNet-20, 1,000 iterations on the CIFAR-10 JPEG folder (`resnets train`) | {fig} | "
                f"{status.get('train_resnet20_1k', 'not run')} |")
    rows.append(f"\nTotal wall time: {status.get('total_wall_s', '?')} s.")
    device = (r50 or r20 or {}).get("env", {})
    if device:
        rows.append(f"Device: {device.get('device_name')}; torch {device.get('torch')}, CUDA {device.get('cuda')}.")
    return "\n".join(rows) + "\n"


def main() -> None:
    out = Path(sys.argv[1])
    result = collect(out)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    text = table(result)
    (out / "gpu_check.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
