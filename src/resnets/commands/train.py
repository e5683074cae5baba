"""`resnets train`, `resnets eval` and `resnets predict`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from resnets.cli import CLIError

if TYPE_CHECKING:
    from resnets.train.config import TrainConfig
    from resnets.train.interrupt import TrainingInterrupted


def register(subparsers: argparse._SubParsersAction) -> None:
    t = subparsers.add_parser(
        "train", help="train a network from a YAML recipe",
        description="Train from a recipe; any value can be overridden as key=value "
                    "(e.g. optim.lr=0.05 model.name=resnet32 data.batch_size=64).",
    )
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, values parsed as YAML")
    t.add_argument("--config", help="a shipped recipe by name (demo, cifar10_he2015, ...: see --list-configs) or a "
                   "YAML file; optional with --resume RUN_DIR")
    t.add_argument("--list-configs", action="store_true", help="list the shipped recipes and exit")
    t.add_argument("--resume", nargs="?", const=True, default=None, metavar="PATH",
                   help="continue the newest run of this name, or the run directory / checkpoint PATH")
    t.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    t.add_argument("--quiet", action="store_true", help="no progress bar and no per-evaluation lines")
    t.set_defaults(func=cmd_train)

    e = subparsers.add_parser("eval", help="evaluate a checkpoint on its dataset's test or validation split")
    e.add_argument("checkpoint", help="a run directory (uses best, else last) or a .safetensors checkpoint")
    e.add_argument("--split", choices=("test", "val"), default="test", help="the split to evaluate on")
    e.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    _backend_options(e, auto=False)
    e.set_defaults(func=cmd_eval)

    p = subparsers.add_parser("predict", help="top-k labels for image files")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--checkpoint", help="a run directory or a .safetensors checkpoint")
    p.add_argument("--weights", help="published weights by name instead, e.g. resnet50.IMAGENET1K_V2 (`resnets weights`)")
    p.add_argument("--topk", type=int, default=5, help="labels per image, most likely first")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--compile", action="store_true", help="torch.compile the folded model (pays off on many images)")
    _backend_options(p, auto=True)
    p.set_defaults(func=cmd_predict)


def _backend_options(p: argparse.ArgumentParser, *, auto: bool) -> None:
    from resnets.deploy.backends import BACKENDS, PRECISIONS

    default = "auto" if auto else None
    p.add_argument("--backend", default=default, choices=(("auto",) if auto else ()) + tuple(BACKENDS),
                   help="inference runtime" + (" (auto: on the CPU the fastest installed path that keeps the "
                                               "accuracy, see benchmarks/RESULTS.md; torch elsewhere)" if auto else ""))
    p.add_argument("--precision", default=default, choices=(("auto",) if auto else ()) + PRECISIONS,
                   help="compute precision (bf16 on the CPU only with AVX512-BF16 or AMX; int8: `resnets quantize`)")


def _config_for(args: argparse.Namespace, notes: list[str]) -> TrainConfig:
    from resnets.train import load_config

    overrides = list(args.overrides)
    config = args.config
    resume = args.resume
    if isinstance(resume, str) and "=" in resume and not Path(resume).exists():
        overrides.insert(0, resume)  # `--resume key=value`: the value went to --resume, not to the overrides
        resume = True
    if resume is not None:
        if resume is not True and not Path(resume).exists():
            raise CLIError(f"--resume {resume}: no such run directory or checkpoint; give a run directory "
                           "written by `resnets train` (e.g. runs/<name>-<time>), or --resume alone for the newest")
        if config is None:
            if resume is True:
                raise CLIError("--resume without a path needs --config (to know the run name)")
            run_dir = Path(resume)
            run_dir = run_dir if run_dir.is_dir() else run_dir.parent
            config = run_dir / "config.yaml"
            if not config.is_file():
                raise CLIError(f"--resume {resume}: {run_dir} holds no config.yaml, so it is not a run directory "
                               "written by `resnets train`; give one (e.g. runs/<name>-<time>)")
    if config is None:
        raise CLIError("give a recipe: resnets train --config demo [key=value ...] (--list-configs shows them)")
    cfg = load_config(config, overrides, notes=notes)
    if resume is None:
        return cfg
    # set directly, not as a key=value override: a path is not always valid YAML (any bytes Linux allows)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, resume=resume if resume is True else str(resume)))


def cmd_train(args: argparse.Namespace) -> int:
    """One process, or one rank of a ``torchrun`` launch (RANK/WORLD_SIZE/LOCAL_RANK set):
    then every rank trains its shard and only rank 0 logs, writes and prints."""
    from resnets.io.atomic import StorageError
    from resnets.train import NonFiniteLossError, run
    from resnets.train.distributed import distributed_session, launch_env
    from resnets.train.interrupt import TrainingInterrupted
    from resnets.train.rundir.lock import RunDirBusyError

    if args.list_configs:
        return _list_configs()
    notes: list[str] = []
    cfg = _config_for(args, notes)
    env = launch_env()
    try:
        if env is None:
            result = run(cfg, device=args.device, quiet=args.quiet, notes=notes)
        else:
            with distributed_session(cfg.train, env=env, device=args.device) as runtime:
                result = run(cfg, runtime=runtime, quiet=args.quiet or env.rank != 0, notes=notes)
            if env.rank != 0:
                return 0
    except (NonFiniteLossError, StorageError, RunDirBusyError) as exc:  # NaN: every rank stops at the same step
        raise CLIError(str(exc)) from None
    except TrainingInterrupted as exc:
        if env is None or env.rank == 0:
            _report_interrupted(exc, device=args.device, processes=env.world_size if env is not None else 1)
        return exc.exit_code
    if result.already_complete:
        parts = [f"the run was already complete: {cfg.model.name} on {cfg.data.name}, {result.step} of "
                 f"{result.total_steps} steps; nothing was trained"]
    else:
        parts = [f"trained {cfg.model.name} on {cfg.data.name}: {result.step} steps in {result.elapsed_s:.1f} s"]
    if result.best_val_acc is not None:
        parts.append(f"best val acc {100 * result.best_val_acc:.2f}%")
    if result.test is not None:
        parts.append(f"test acc {100 * result.test['acc']:.2f}% (loss {result.test['loss']:.4f})")
    print("; ".join(parts))
    print(f"run directory: {result.run_dir}")
    if result.run_dir is not None:
        shown = [("results", "final.json"), ("curves", "curves.png"), ("best checkpoint", "best.safetensors"),
                 ("last checkpoint", "last.safetensors")]
        for label, name in shown:
            if (result.run_dir / name).exists():
                print(f"  {label}: {result.run_dir / name}")
    return 0


def _list_configs() -> int:
    from resnets.data.paths import shown
    from resnets.train.recipes import describe, shipped_recipes

    recipes = shipped_recipes()
    width = max(map(len, recipes))
    for name, path in recipes.items():
        print(f"{name:<{width}}  {describe(path)}")
    print(f"(use one as --config NAME; copy a file from {shown(next(iter(recipes.values())).parent)} to change it)")
    return 0


def _report_interrupted(exc: TrainingInterrupted, *, device: str | None, processes: int) -> None:
    """On a fresh line (a progress bar may hold the cursor): where the run stopped and how to go on,
    in one write (a launcher's own messages may share the stream)."""
    lead = "\n" if sys.stderr.isatty() else ""
    command = exc.resume_command(device=device, processes=processes)
    resume = f"  resume with: {command}\n" if command is not None else ""
    sys.stderr.write(f"{lead}resnets train: {exc}\n{resume}")
    sys.stderr.flush()


def cmd_eval(args: argparse.Namespace) -> int:
    from resnets.cpu_features import cpu_has_bf16
    from resnets.io.runs import open_run
    from resnets.runtime import resolve_device
    from resnets.train.assemble import prepare_run
    from resnets.train.configio import config_from_mapping
    from resnets.train.evaluate import evaluate, with_checkpoint_normalisation
    from resnets.train.runtime import make_runtime

    trained = open_run(args.checkpoint)
    path, metadata = trained.path, trained.metadata
    cfg = config_from_mapping(trained.recipe())
    deployed = args.backend is not None or args.precision is not None
    if args.precision == "int8":
        raise CLIError("int8 is evaluated by `resnets quantize RUN`, which reports top-1 before and after")
    device = "cpu" if args.backend not in (None, "torch") else args.device
    if not args.json:  # loading the data can take a while: say first what is evaluated on what
        print(f"evaluating {path} ({metadata.get('model', 'a network')}, step {metadata.get('step', '?')}) on "
              f"{cfg.data.name} {args.split}, device {device or 'auto'} ...", flush=True)
    # the network the checkpoint's metadata describes (a converted checkpoint's options included)
    loop = cfg.train
    if loop.precision == "bf16" and resolve_device(device).type == "cpu" and not cpu_has_bf16():
        loop = dataclasses.replace(loop, precision="fp32")  # the weights are fp32: bf16 was the training's compute
    run = prepare_run(cfg, make_runtime(loop, device=device), weights=path,
                      model_fn=lambda _cfg, _bundle: trained.build_model())
    assert run.bundle is not None
    loader = run.bundle.test if args.split == "test" else run.bundle.val
    if loader is None:
        raise CLIError(f"the dataset {cfg.data.name!r} has no {args.split} split; try --split "
                       f"{'val' if args.split == 'test' else 'test'}")
    model, runtime = run.model, run.runtime
    if "mean" in metadata:  # a converted checkpoint keeps its source's input normalisation
        model = runtime.place(with_checkpoint_normalisation(
            model, loader_stats=(run.bundle.mean, run.bundle.std),
            model_stats=(json.loads(metadata["mean"]), json.loads(metadata["std"]))))
    if deployed:  # the deployed model runs its own precision and layout
        from resnets.deploy import inference_model

        size = (run.bundle.in_chans, run.bundle.image_size, run.bundle.image_size)
        model = inference_model(model, device=runtime.device,
                                backend=args.backend or "torch", precision=args.precision or "fp32", input_size=size)
        runtime = dataclasses.replace(runtime, autocast_dtype=None, channels_last=False)
    result = evaluate(model, loader, runtime=runtime)
    if deployed:
        result["backend"] = model.describe()
    if args.json:
        print(json.dumps({"checkpoint": str(path), "split": args.split, **result}))
        return 0
    top5 = f", top-5 {100 * result['top5']:.2f}%" if "top5" in result else ""
    ran = f" [{result['backend']}]" if deployed else ""
    print(f"{path}{ran} on {cfg.data.name} {args.split} ({result['samples']} images): "
          f"loss {result['loss']:.4f}, top-1 {100 * result['acc']:.2f}%{top5}")
    return 0


def _resolve_backend(args: argparse.Namespace, device_type: str) -> tuple[str, str | None]:
    """--backend / --precision with "auto" resolved: on the CPU the fastest installed path, else torch."""
    from resnets.deploy.backends.select import fastest_cpu_path

    backend = None if args.backend == "auto" else args.backend
    if backend is None and args.compile:
        backend = "torch"  # --compile is torch.compile
    precision = None if args.precision == "auto" else args.precision
    if precision == "int8":
        raise CLIError("--precision int8 needs a calibrated model: write one with `resnets quantize RUN`")
    if device_type == "cpu":
        return fastest_cpu_path(backend=backend, precision=precision, images=len(args.images))
    return backend or "torch", precision


def cmd_predict(args: argparse.Namespace) -> int:
    from resnets.data.paths import shown
    from resnets.deploy import inference_model
    from resnets.deploy.predict import load_predictor, load_published_predictor, predict

    if args.topk < 1 or args.batch_size < 1:
        raise CLIError("--topk and --batch-size must be >= 1")
    if (args.checkpoint is None) == (args.weights is None):
        raise CLIError("give --checkpoint RUN_DIR|FILE or --weights NAME (one of them)")
    if args.weights is not None:
        predictor = load_published_predictor(args.weights, device=args.device)
    else:
        predictor = load_predictor(args.checkpoint, device=args.device)
    if predictor.note:
        print(f"resnets predict: note: {predictor.note}", file=sys.stderr)
    if not args.json:
        params = sum(p.numel() for p in predictor.model.parameters())
        print(f"predicting {len(args.images)} image(s) with {args.weights or shown(args.checkpoint)} "
              f"({params / 1e6:.2f} M parameters, {len(predictor.classes)} classes, "
              f"{predictor.in_chans}x{predictor.image_size}x{predictor.image_size} input) on {predictor.device}, "
              f"batches of {args.batch_size}", flush=True)
    # BN folded into the convolutions; bf16 and channels_last on CUDA; on the CPU the fastest installed path
    backend, precision = _resolve_backend(args, predictor.device.type)
    size = (predictor.in_chans, predictor.image_size, predictor.image_size)
    predictor.model = inference_model(predictor.model, device=predictor.device, compile=args.compile,
                                      backend=backend, precision=precision, input_size=size)
    skipped: list[str] = []

    def report(path: str, reason: str) -> None:
        skipped.append(path)
        print(f"resnets predict: skipped {reason}", file=sys.stderr)

    predictions = predict(predictor, args.images, topk=args.topk, batch_size=args.batch_size, on_error=report)
    if predictions:
        print(f"resnets predict: ran {predictor.model.describe()}", file=sys.stderr)
    if args.json:
        print(json.dumps([{"image": p.path, "topk": [{"label": label, "prob": prob} for label, prob in p.topk]}
                          for p in predictions]))
    else:
        for p in predictions:
            print(f"{shown(p.path)}: " + ", ".join(f"{label} {100 * prob:.1f}%" for label, prob in p.topk))
    if skipped:  # each skipped file has had its line
        return 2 if not predictions else 1
    return 0
