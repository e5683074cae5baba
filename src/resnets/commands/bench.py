"""`resnets bench`: training and inference throughput and peak memory, ours against the twin."""

from __future__ import annotations

import argparse

from resnets.bench import BenchConfig, run_bench, save_json
from resnets.bench.config import COMPILE, DATA, PRECISIONS, SWITCH, TWIN_PRECISIONS, WORKLOADS
from resnets.bench.results import load_line, note_lines
from resnets.bench.twins import TWINS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="throughput (img/s) and peak memory of a model against torchvision's (or a plain CIFAR ResNet)",
        description="Times training and inference steps of our model and its twin in the same process "
        "(same batch, precision and memory format), alternating, and prints each median with the ratio.",
    )
    p.add_argument("--suite", default="twin", choices=("twin", "deploy"),
                   help="twin: ours against its twin (default); deploy: CPU inference, torchvision eager fp32 against "
                        "ours in every installed backend and precision and onnxruntime/OpenVINO on torchvision's model "
                        "(uses --model, --batch, --image-size, --threads, --warmup, --reps, --steps, --seed, --json; "
                        "--compile adds our torch paths compiled with frozen weights)")
    p.add_argument("--model", default="resnet20", metavar="NAME", help=f"one of: {', '.join(sorted(TWINS))}")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--batch", type=int, default=32, help="images per step")
    p.add_argument("--image-size", type=int, default=None, help="image side in pixels (default: the model's native)")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated: train, infer (default: both)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="auto: bf16 autocast on CUDA, fp32 on CPU")
    p.add_argument("--twin-precision", default="same", choices=TWIN_PRECISIONS,
                   help="the twin's precision: same as ours (default), or fp32 (e.g. --precision bf16 --workloads train "
                        "--twin-precision fp32: our bf16 step against torchvision's fp32 loop)")
    p.add_argument("--channels-last", default="auto", choices=SWITCH,
                   help="NHWC memory format for both sides (auto: on, the measured faster layout on CUDA and CPU)")
    p.add_argument("--compile", nargs="?", const="both", default="off", choices=COMPILE,
                   help="torch.compile: bare --compile = both sides; 'ours' compiles ours only")
    p.add_argument("--graphs", default="auto", choices=SWITCH, help="CUDA graphs for our steps (auto: on CUDA)")
    p.add_argument("--no-fold", action="store_true", help="our inference keeps BatchNorm (default: folded into convs)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per side first")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions per side (alternating)")
    p.add_argument("--steps", type=int, default=10, help="steps per repetition")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    p.add_argument("--data", nargs="+", default=None, metavar=("NAME", "PATH"),
                   help=f"time the engine's loader + step on a dataset: {' | '.join(DATA)} (imagefolder takes a PATH)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="PATH", help="also write the result as JSON")
    p.set_defaults(func=cmd_bench)


def _data(values: list[str] | None) -> tuple[str | None, str | None]:
    if values is None:
        return None, None
    if len(values) > 2 or (values[0] == "imagefolder") != (len(values) == 2):
        raise ValueError(
            f"--data {' '.join(values)}: give a dataset name ({', '.join(DATA)}), and a folder only for "
            "imagefolder (e.g. --data imagefolder /path/to/images)"
        )
    return values[0], values[1] if len(values) == 2 else None


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    data, root = _data(args.data)
    return BenchConfig(
        model=args.model, device=args.device, batch=args.batch, image_size=args.image_size,
        workloads=tuple(w.strip() for w in args.workloads.split(",") if w.strip()),
        precision=args.precision, twin_precision=args.twin_precision, channels_last=args.channels_last,
        compile=args.compile, graphs=args.graphs,
        fold=not args.no_fold, warmup=args.warmup, reps=args.reps, steps=args.steps, memory=not args.no_memory,
        data=data, data_root=root, threads=args.threads, seed=args.seed,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    if args.suite == "deploy":
        from resnets.bench.deploy import run_deploy_cli

        return run_deploy_cli(args)
    result = run_bench(config_from_args(args), report=lambda text: print(text, flush=True))  # as it is measured
    print("\n".join([load_line(result), *note_lines(result)]))
    if args.json:
        print(f"wrote {save_json(result, args.json)}")
    return 0
