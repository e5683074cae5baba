"""Turn `resnets bench --json` files into the Markdown table of benchmarks/RESULTS.md.

    python benchmarks/summarize.py benchmarks/results/cpu/*.json
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from resnets.bench import load_json  # noqa: E402


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f}"


def rows(paths: list[str]) -> list[str]:
    out = [
        "| run | model | batch | px | layout | data | workload | ours img/s | theirs img/s | ratio | paired ratio | "
        "ours / theirs peak MiB | load avg (start / end) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        r = load_json(path)
        cfg, res, env = r["config"], r["resolved"], r["env"]
        layout = "channels_last" if res["channels_last"] else "NCHW"
        data = cfg["data"] or "synthetic batch"
        load = f"{env['load_average'][0]} / {env['load_average_end'][0]}" if env.get("load_average") else "n/a"
        for workload, w in r["results"].items():
            o, t = w["ours"], w["theirs"]
            paired = statistics.median(a / b for a, b in zip(o["samples"], t["samples"]))
            out.append(
                f"| {Path(path).stem} | {cfg['model']} | {cfg['batch']} | {r['image_size']} | {layout} | {data} | "
                f"{workload} | {o['img_per_s']:.1f} | {t['img_per_s']:.1f} | **{w['ratio']:.2f}** | {paired:.2f} | "
                f"{_mib(o['peak_memory_bytes'])} / {_mib(t['peak_memory_bytes'])} | {load} |"
            )
    return out


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python benchmarks/summarize.py RESULT.json [...]")
    print("\n".join(rows(sys.argv[1:])))
