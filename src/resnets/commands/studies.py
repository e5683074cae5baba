"""`resnets study degradation|gradients|identity|lesion|normfree|all` and `resnets reproduce he2015-cifar10`."""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resnets.cli import CLIError


def _defaults(study: str, field: str) -> Callable[[], str]:
    """``--help``'s "(default: A on a CPU, B on CUDA)" for ``field`` of the study's recipes, computed
    only when the help is shown (the studies' modules are not imported to build the parser)."""

    def text() -> str:
        from resnets.studies.recipe import STUDY_DEFAULTS

        table = STUDY_DEFAULTS[study]

        def value(kind: str) -> str:
            v = getattr(table[kind], field)
            return " ".join(map(str, v)) if isinstance(v, tuple) else str(v)

        values = {where: value(kind) for kind, where in (("cpu", "on a CPU"), ("cuda", "on CUDA")) if kind in table}
        if len(set(values.values())) == 1:
            return f"(default: {next(iter(values.values()))})"
        return "(default: " + ", ".join(f"{v} {where}" for where, v in values.items()) + ")"

    return text


def _add_common(p: argparse.ArgumentParser, study: str, *, data: bool = True) -> None:
    options: list[tuple[str, str, dict[str, Any]]] = [
        ("--depths", "depths", {"type": int, "nargs": "+", "metavar": "D",
                                "help": "network depths (6n+2: 8, 14, 20, 32, 44, 56, 110)"}),
        ("--iterations", "iterations", {"type": int, "help": "training iterations per network"}),
        ("--seeds", "seeds", {"type": int, "nargs": "+", "metavar": "S",
                              "help": "seeds; each network is trained once per seed"}),
        ("--batch-size", "batch_size", {"type": int, "dest": "batch_size", "help": "images per step"}),
        ("--lr", "lr", {"type": float, "help": "base learning rate"}),
        ("--milestones", "milestones", {"type": int, "nargs": "*", "metavar": "IT",
                                        "help": "iterations at which the lr is divided by 10"}),
        ("--eval-every", "eval_every", {"type": int, "dest": "eval_every",
                                        "help": "iterations between points of the curves"}),
    ]
    if data:
        options.append(("--data", "data", {"dest": "data_name", "metavar": "NAME", "help": "dataset name: digits, "
                        "mnist, fashion-mnist, cifar10, cifar100, imagefolder, synthetic"}))
    for flag, field, kwargs in options:
        action = p.add_argument(flag, **kwargs)
        action.default_help = _defaults(study, field)  # type: ignore[attr-defined]  # read by cli's formatter
    if data:
        p.add_argument("--data-dir", dest="data_dir", metavar="DIR", help="where the dataset lives")
        p.add_argument("--download", action="store_true", help="download the dataset when it is missing (needs network)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available); cuda selects the paper's defaults")
    p.add_argument("--workers", type=int, default=None,
                   help="networks trained at once (default: min(cores, networks) on a CPU, a few processes on a GPU)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run directory (default runs/study-<name>-<timestamp>); an existing one is resumed")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no per-network lines")


def register(subparsers: argparse._SubParsersAction) -> None:
    study = subparsers.add_parser("study", help="the papers' claims as studies with plots and a report")
    kinds = study.add_subparsers(dest="study", metavar="STUDY")
    kinds.required = True
    d = kinds.add_parser("degradation", help="plain vs residual nets of several depths: error against iterations (Fig. 6)")
    _add_common(d, "degradation")
    d.set_defaults(func=cmd_degradation)
    g = kinds.add_parser("gradients", help="gradient norm at every layer, plain vs residual, at init and after training")
    _add_common(g, "gradients")
    g.set_defaults(func=cmd_gradients)
    i = kinds.add_parser("identity", help="zeroed branches are the identity; inserted units; branch sizes (Fig. 7)")
    _add_common(i, "identity")
    i.add_argument("--blocks", type=int, default=4, metavar="K", help="units to insert into the trained networks")
    i.set_defaults(func=cmd_identity)
    les = kinds.add_parser("lesion", help="delete blocks of trained residual and plain nets at test time "
                                          "(Veit et al. 2016)")
    _add_common(les, "lesion")
    les.add_argument("--draws", type=int, default=10, metavar="N",
                     help="random sets of k blocks deleted for each k (default: 10)")
    les.set_defaults(func=cmd_lesion)
    nf = kinds.add_parser("normfree", help="training without normalisation: BN, none, Fixup, SkipInit "
                                           "(Zhang et al. 2019, De & Smith 2020)")
    _add_common(nf, "normfree")
    nf.set_defaults(func=cmd_normfree)
    a = kinds.add_parser("all", help="every study with its defaults, and one index page linking the reports")
    a.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    a.add_argument("--workers", type=int, default=None, help="networks trained at once, in every study")
    a.add_argument("--out", default=None, metavar="DIR",
                   help="run directory (default runs/study-all-<timestamp>); an existing one is resumed")
    a.add_argument("--iterations", type=int, default=None,
                   help="train every network this long (lr drops kept at the same fractions; default: each study's)")
    a.add_argument("--smoke", action="store_true",
                   help="two small depths, two seeds, 20 iterations: checks the pipeline in a minute, shows nothing")
    a.add_argument("--quiet", action="store_true", help="no progress bar and no per-network lines")
    a.set_defaults(func=cmd_all)

    rep = subparsers.add_parser("reproduce", help="reproduce a paper's experiment with its recipe")
    which = rep.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    which.required = True
    h = which.add_parser("he2015-cifar10", help="He et al. 2015 Table 6 / Figure 6 on CIFAR-10 (hours on a GPU)")
    h.add_argument("--data", dest="data_dir", metavar="DIR",
                   help="a CIFAR-10 image folder (train/ and test/ of class folders); default: the official set")
    h.add_argument("--download", action="store_true", help="download the official CIFAR-10 when it is missing")
    h.add_argument("--depths", type=int, nargs="+", metavar="D", help="default 20 32 44 56 110 (plain up to 56)")
    h.add_argument("--iterations", type=int, help="shorten the run (lr drops and warm-up scale with it); default 64000")
    h.add_argument("--seeds", type=int, nargs="+", metavar="S")
    h.add_argument("--device", default=None)
    h.add_argument("--workers", type=int, default=None)
    h.add_argument("--out", default=None, metavar="DIR")
    h.add_argument("--quiet", action="store_true")
    h.set_defaults(func=cmd_reproduce)


def _device(args: argparse.Namespace) -> str:
    from resnets.runtime import resolve_device

    return str(resolve_device(args.device))


def _out_dir(args: argparse.Namespace, name: str) -> Path:
    if args.out:
        return Path(args.out)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"study-{name}-{stamp}"


def _recipe(study: str, args: argparse.Namespace, device: str) -> Any:
    from resnets.studies.recipe import default_recipe

    changes: dict[str, Any] = {k: getattr(args, k) for k in
                               ("depths", "iterations", "seeds", "batch_size", "lr", "milestones", "eval_every")}
    if args.data_name is not None:
        changes["data"] = args.data_name
    if args.data_dir is not None:
        changes["root"] = args.data_dir
    if args.download:
        changes["download"] = True
    base = default_recipe(study, device)
    if args.iterations is not None:
        base = base.with_iterations(args.iterations)  # the lr drops at the same fractions of the run
    recipe = base.replace(changes)
    if recipe.milestones and recipe.milestones[-1] >= recipe.iterations:
        raise CLIError(f"--milestones {list(recipe.milestones)} must lie below --iterations {recipe.iterations}")
    return recipe


def _command_line() -> str:
    return "resnets " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _finish(kind: str, out_dir: Path, lines: list[str]) -> int:
    for line in lines:
        print(line)
    print(f"{kind} report: {out_dir / 'report.html'} (summary: {out_dir / 'summary.md'})")
    return 0


def _study(args: argparse.Namespace, name: str, runner: Callable[..., Any], **extra: Any) -> tuple[Any, Path]:
    from resnets.studies.pool import removed_if_failed_empty

    device = _device(args)
    recipe = _recipe(name, args, device)
    out_dir = _out_dir(args, name)
    if not args.quiet:
        print(f"{name} study: {recipe.data}, depths {list(recipe.depths)}, seeds {list(recipe.seeds)}, "
              f"{recipe.iterations} iterations, on {device}; writing to {out_dir}", flush=True)
    with removed_if_failed_empty(out_dir):
        return runner(recipe, out_dir=out_dir, device=device, workers=args.workers, quiet=args.quiet,
                      command=_command_line(), **extra), out_dir


def cmd_degradation(args: argparse.Namespace) -> int:
    from resnets.studies.degradation import effect_text, markdown_rows, run_degradation

    out, out_dir = _study(args, "degradation", run_degradation)
    return _finish("degradation", out_dir, markdown_rows(out.rows) + [effect_text(out.effect)])


def _claim_lines(claims: list[Any]) -> list[str]:
    """The checked claims, one line each (the per-network lines were printed as each finished)."""
    return [f"{c.verdict.upper():>9}: {c.claim} ({c.paper}); measured: {c.measured}" for c in claims]


def cmd_gradients(args: argparse.Namespace) -> int:
    from resnets.studies.gradients import PHASES, effect_sentence, run_gradients

    out, out_dir = _study(args, "gradients", run_gradients)
    lines = [effect_sentence(out["effect"], p) for p in PHASES if p in out["effect"]]
    return _finish("gradients", out_dir, lines + _claim_lines(out["claims"]))


def cmd_identity(args: argparse.Namespace) -> int:
    from resnets.studies.identity import run_identity

    out, out_dir = _study(args, "identity", run_identity, k=args.blocks)
    return _finish("identity", out_dir, _claim_lines(out["claims"]))


def cmd_all(args: argparse.Namespace) -> int:
    from resnets.studies.index import SMOKE, STUDIES, run_all

    device = _device(args)
    out_dir = _out_dir(args, "all")
    changes: dict[str, Any] = dict(SMOKE) if args.smoke else {}
    if args.iterations is not None:
        changes["iterations"] = args.iterations
    if not args.quiet:
        print(f"all studies ({', '.join(STUDIES)}) with their defaults"
              + (" shrunk to a smoke test" if args.smoke else "")
              + (f", {args.iterations} iterations each" if args.iterations else "")
              + f", on {device}; writing to {out_dir}", flush=True)
    runs = run_all(out_dir=out_dir, device=device, workers=args.workers, quiet=args.quiet, changes=changes,
                   command=_command_line())
    failed = [r for r in runs if r.error is not None]
    for r in runs:
        print(f"{r.name}: {'failed: ' + r.error if r.error else 'report ' + str(r.out_dir / 'report.html')}"
              f" ({r.wall_s:.0f} s)")
    print(f"index: {out_dir / 'index.html'}")
    if failed:
        print(f"resnets study all: {len(failed)} of {len(runs)} studies failed (see above); fix the cause and rerun "
              f"with --out {out_dir} to resume", file=sys.stderr)
        return 2 if len(failed) == len(runs) else 1
    return 0


def cmd_lesion(args: argparse.Namespace) -> int:
    from resnets.studies.lesion import run_lesion

    if args.draws < 1:
        raise CLIError(f"--draws must be >= 1 (random sets of blocks deleted per k), got {args.draws}")
    out, out_dir = _study(args, "lesion", run_lesion, draws=args.draws)
    return _finish("lesion", out_dir, _claim_lines(out["claims"]))


def cmd_normfree(args: argparse.Namespace) -> int:
    from resnets.studies.normfree import run_normfree

    out, out_dir = _study(args, "normfree", run_normfree)
    return _finish("normfree", out_dir, _claim_lines(out["claims"]))


def cmd_reproduce(args: argparse.Namespace) -> int:
    from resnets.studies.degradation import effect_text, markdown_rows
    from resnets.studies.pool import removed_if_failed_empty
    from resnets.studies.reproduce import PAPER_TEST_ERROR, he2015_recipe, reproduce_he2015, shortened_note

    device = _device(args)
    recipe = he2015_recipe(data_dir=args.data_dir, download=args.download, depths=args.depths,
                           iterations=args.iterations, seeds=args.seeds)
    out_dir = _out_dir(args, "he2015-cifar10")
    note = shortened_note(recipe)
    if not args.quiet:
        print(f"he2015-cifar10: {recipe.data}{' ' + str(recipe.root) if recipe.root else ''}, depths "
              f"{list(recipe.depths)}, {recipe.iterations} iterations, on {device}; writing to {out_dir}"
              + (f"\nthis is {note}" if note else ""), flush=True)
    with removed_if_failed_empty(out_dir):
        out = reproduce_he2015(recipe, out_dir=out_dir, device=device, workers=args.workers, quiet=args.quiet,
                               command=_command_line())
    lines = markdown_rows(out.rows, reference=PAPER_TEST_ERROR) + [effect_text(out.effect)]
    return _finish("he2015-cifar10" + (" (shortened run, not a reproduction)" if note else ""), out_dir,
                   lines + ([f"This was {note}."] if note else []))


def build_args(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` with the full command line (for tests and programmatic use)."""
    from resnets.cli import build_parser

    return build_parser().parse_args(argv)
