"""The benchmark's result as text for people and as JSON for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from resnets.io.atomic import write_json

WORKLOAD_TITLES: dict[str, str] = {"train": "training", "infer": "inference"}


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.0f} MiB"


def header_lines(result: dict[str, Any]) -> list[str]:
    """What is measured, where, with which versions, and how (known before the first step)."""
    env, cfg, res = result["env"], result["config"], result["resolved"]
    twin = res.get("twin_precision", res["precision"])  # results written before the option: the same
    precision = res["precision"] if twin == res["precision"] else f"{res['precision']} (twin: {twin})"
    return [
        f"resnets bench: {cfg['model']}, batch {cfg['batch']}, {result['image_size']}px, {precision}, "
        f"channels_last={res['channels_last']}, compile={res['compile']}, cuda_graphs={res['cuda_graphs']}",
        f"device: {env['device_name']} [{env['device']}]",
        f"torch {env['torch']}, torchvision {env['torchvision']}, resnets {env['resnets']}, python {env['python']}"
        + (f", CUDA {env['cuda']}" if "cuda" in env else ""),
        f"batches: {result['batches']}",
        f"twin: {result['reference']}",
        f"timing: median of {cfg['reps']} alternating repetitions of {cfg['steps']} steps after {cfg['warmup']} "
        "warm-up steps per side",
    ]


def load_line(result: dict[str, Any]) -> str:
    env = result["env"]
    end = f", {env['load_average_end']} at end" if env.get("load_average_end") is not None else ""
    return f"load average: {env.get('load_average')} at start{end}; {env['date']}"


def workload_lines(workload: str, r: dict[str, Any]) -> list[str]:
    """One workload's figures: each side's median, range and memory, and the ratio."""
    lines = [f"{WORKLOAD_TITLES.get(workload, workload)}:"]
    for side in ("ours", "theirs"):
        s = r[side]
        lines.append(
            f"  {side:<6} {s['img_per_s']:>10,.1f} img/s  (min {s['min']:,.1f}, max {s['max']:,.1f}, "
            f"spread {100 * s['spread']:.0f}%)  peak memory {_mib(s['peak_memory_bytes'])}"
        )
        lines.append(f"         {s['description']}")
    paired = f" (median of per-repetition ratios: {r['paired_ratio']:.3f})" if "paired_ratio" in r else ""
    lines.append(f"  ratio ours/theirs: {r['ratio']:.3f}{paired}")
    return lines


def note_lines(result: dict[str, Any]) -> list[str]:
    return [f"note: {note}" for note in result.get("notes", [])]


def format_text(result: dict[str, Any]) -> str:
    """Every figure with its ratio, the device, the versions and what exactly ran."""
    lines = [*header_lines(result), load_line(result)]
    for workload, r in result["results"].items():
        lines += workload_lines(workload, r)
    return "\n".join(lines + note_lines(result))


def save_json(result: dict[str, Any], path: str | Path) -> Path:
    """Write ``result`` as indented JSON, atomically (parent folders created)."""
    write_json(path, result)
    return Path(path)


def load_json(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no benchmark result at {p}; write one with `resnets bench --json {p}`")
    data = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "results" not in data:
        raise ValueError(f"{p} is not a `resnets bench` result (no 'results' key)")
    return data


__all__ = ["format_text", "header_lines", "load_json", "load_line", "note_lines", "save_json", "workload_lines"]
