"""CPU deployment benchmark: torchvision's eager fp32 model against ours in every installed
backend and precision, and against onnxruntime and OpenVINO running torchvision's own model.

All sides run in one process on the same batch, alternating (see :mod:`resnets.bench.timing`),
and every figure is reported as a ratio to torchvision eager fp32 of the same run, so a busy
machine moves both sides alike. OpenVINO's own default precision (bf16 on CPUs with
AVX512-BF16 or AMX) is timed as a side of its own, named as such.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from resnets.bench.timing import alternate, summarize
from resnets.bench.twins import get_twin
from resnets.bench.workloads import Side
from resnets.cpu_features import cpu_has_bf16
from resnets.deploy import InferenceModel, inference_model
from resnets.deploy.backends import BACKENDS, available
from resnets.io.environment import environment, load_average
from resnets.models import create_model

BASELINE = "torchvision eager fp32"
LIBRARIES: tuple[str, ...] = ("torch", "torchvision", "onnxruntime", "openvino", "nncf", "numpy")


@dataclass(frozen=True)
class DeployBenchConfig:
    model: str = "resnet50"
    batch: int = 16
    image_size: int = 224
    threads: int | None = None  # None: torch's default (all cores)
    warmup: int = 3
    reps: int = 5
    steps: int = 5
    calibration_batches: int = 4  # int8: generated images (speed does not depend on what they show)
    seed: int = 0
    compiled: bool = False  # also our torch paths under torch.compile (weights frozen), built and warmed up first


def _calibration(cfg: DeployBenchConfig, in_chans: int) -> list[Tensor]:
    """Smooth random images, normalised: activations in the range real photographs give."""
    g = torch.Generator().manual_seed(cfg.seed + 1)
    out = []
    for _ in range(cfg.calibration_batches):
        coarse = torch.rand(cfg.batch, in_chans, 7, 7, generator=g)
        x = nn.functional.interpolate(coarse, size=(cfg.image_size,) * 2, mode="bilinear", align_corners=False)
        out.append((x + 0.05 * torch.randn(x.shape, generator=g) - 0.45) / 0.225)
    return out


def _torchvision_exported(reference: nn.Module, size: tuple[int, int, int]) -> dict[str, Callable[[Tensor], Tensor]]:
    """onnxruntime fp32, OpenVINO f32 and OpenVINO's default precision running torchvision's model."""
    runs: dict[str, Callable[[Tensor], Tensor]] = {}
    if available("onnxruntime"):
        import tempfile
        from pathlib import Path

        from resnets.deploy.backends.ort_session import OrtModule
        from resnets.deploy.export import export_onnx

        path = export_onnx(reference, Path(tempfile.mkdtemp(prefix="resnets-bench-")) / "torchvision.onnx",
                           input_size=size, fold=False)
        runs["onnxruntime fp32 (torchvision's model)"] = OrtModule(path, threads=torch.get_num_threads())
    if available("openvino"):
        from resnets.deploy.backends.openvino_model import OpenVINOModule, convert

        ir = convert(reference, input_size=size)
        threads = torch.get_num_threads()
        runs["openvino f32 (torchvision's model)"] = OpenVINOModule(ir, hint="f32", threads=threads)
        default = "bf16" if cpu_has_bf16() else "f32"
        # OpenVINO picks bf16 by itself where the CPU has it; where a oneDNN cap (ONEDNN_MAX_CPU_ISA) rules
        # bf16 out, its own choice would fail to compile, so the default is named: f32, as on such a CPU
        hint = None if default == "bf16" else "f32"
        runs[f"openvino default = {default} (torchvision's model)"] = OpenVINOModule(ir, hint=hint, threads=threads)
    return runs


def deployment_paths(
    model: nn.Module, *, input_size: Sequence[int], calibration: Sequence[Tensor], compiled: bool = False
) -> dict[str, InferenceModel]:
    """``model`` in every installed backend and every precision this CPU runs natively, keyed
    "BACKEND PRECISION"; int8 calibrated on ``calibration``; with ``compiled``, the torch fp32 and bf16
    paths also compiled ("torch PRECISION compiled")."""
    built: dict[str, InferenceModel] = {}
    for backend, entry in BACKENDS.items():
        if not available(backend):
            continue
        for precision in entry.precisions:
            if precision == "bf16" and not cpu_has_bf16():
                continue
            built[f"{backend} {precision}"] = inference_model(
                model, device="cpu", backend=backend, precision=precision, input_size=input_size,
                calibration=calibration if precision == "int8" else None)
            if compiled and backend == "torch" and precision != "int8":
                built[f"{backend} {precision} compiled"] = inference_model(
                    model, device="cpu", backend=backend, precision=precision, input_size=input_size, compile=True)
    return built


@torch.no_grad()
def _latencies(runs: dict[str, Callable[[Tensor], Tensor]], x1: Tensor, *, reps: int) -> dict[str, float]:
    """Batch-1 latency of each side in milliseconds: median of ``reps`` alternating calls after one warm-up."""
    import time

    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():
        fn(x1)
    for _ in range(reps):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn(x1)
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(t) for name, t in times.items()}


def run_deploy_bench(cfg: DeployBenchConfig) -> dict[str, Any]:
    """Images per second of every side, their ratio to torchvision eager fp32, and the machine."""
    threads_before = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    try:
        torch.manual_seed(cfg.seed)
        twin = get_twin(cfg.model)
        theirs = twin.build(1000, 3).eval()
        ours = create_model(cfg.model).eval()
        if twin.same_keys:
            ours.load_state_dict(theirs.state_dict())  # the same function: ratios compare speed alone
        size = (3, cfg.image_size, cfg.image_size)
        x = _calibration(cfg, 3)[0]  # (N, C, H, W)
        runs: dict[str, Callable[[Tensor], Tensor]] = {BASELINE: theirs}
        runs.update({f"ours {k}": m for k, m in deployment_paths(ours, input_size=size, calibration=_calibration(cfg, 3),
                                                                  compiled=cfg.compiled).items()})
        runs.update(_torchvision_exported(theirs, size))
        env = environment(torch.device("cpu"), libraries=LIBRARIES)  # its load average: at the start

        def step_of(fn: Callable[[Tensor], Tensor]) -> Callable[[], None]:
            def step() -> None:
                with torch.no_grad():
                    fn(x)
            return step

        sides = [Side(name, name, step_of(fn)) for name, fn in runs.items()]
        rates = alternate(sides, warmup=cfg.warmup, reps=cfg.reps, steps=cfg.steps, batch=cfg.batch,
                          device=torch.device("cpu"))
        base = summarize(rates[BASELINE])["median"]
        results = {name: {**summarize(r), "ratio": summarize(r)["median"] / base, "samples": r,
                          "paired_ratio": statistics.median(a / b for a, b in zip(r, rates[BASELINE]))}
                   for name, r in rates.items()}
        for name, ms in _latencies(runs, x[:1], reps=cfg.reps).items():
            results[name]["latency_ms"] = ms
        return {
            "config": asdict(cfg),
            "results": results,
            "env": {**env, "load_average_end": load_average()},
        }
    finally:
        torch.set_num_threads(threads_before)


def format_deploy(result: dict[str, Any]) -> str:
    """A table: side, img/s (median, spread), ratio to torchvision eager fp32 (of the medians, and the
    median of the per-repetition ratios, robust to a drifting load), batch-1 latency; then the machine."""
    cfg, env = result["config"], result["env"]
    lines = [
        f"resnets bench --suite deploy: {cfg['model']}, batch {cfg['batch']}, {cfg['image_size']}px, "
        f"{env['torch_threads']} threads; median of {cfg['reps']} alternating repetitions of {cfg['steps']} batches",
        f"CPU: {env['cpu_model']} ({env['cpu_count']} logical cores); flags: {' '.join(env['cpu_flags'])}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        f"load average: {env['load_average']} at start, {env['load_average_end']} at end",
        f"{'side':<48} {'img/s':>9} {'spread':>7} {'ratio':>6} {'paired':>6} {'batch-1 ms':>10}",
    ]
    for name, r in result["results"].items():
        lines.append(f"{name:<48} {r['median']:>9.1f} {100 * r['spread']:>6.0f}% {r['ratio']:>6.2f} "
                     f"{r['paired_ratio']:>6.2f} "
                     f"{r.get('latency_ms', float('nan')):>10.1f}")
    return "\n".join(lines)


def run_deploy_cli(args: Any) -> int:
    """`resnets bench --suite deploy`: run, print the table, write JSON when asked."""
    from resnets.bench.results import save_json

    cfg = DeployBenchConfig(model=args.model, batch=args.batch, image_size=args.image_size or 224,
                            threads=args.threads, warmup=args.warmup, reps=args.reps, steps=args.steps, seed=args.seed,
                            compiled=args.compile != "off")
    result = run_deploy_bench(cfg)
    print(format_deploy(result))
    if args.json:
        print(f"wrote {save_json(result, args.json)}")
    return 0


__all__ = ["BASELINE", "DeployBenchConfig", "deployment_paths", "format_deploy", "run_deploy_bench", "run_deploy_cli"]
