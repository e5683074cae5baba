"""`resnets models [PATTERN]` and `resnets summary NAME`."""

from __future__ import annotations

import argparse

from resnets.models import create_model, get_entry, list_models
from resnets.models.inspect import count_macs, count_parameters, figures_of, layer_table


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the models with parameters and FLOPs")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'resnet*' or '*20'")
    p.add_argument("--no-flops", action="store_true", help="leave out the multiply-adds column")
    p.set_defaults(func=cmd_models)

    s = subparsers.add_parser("summary", help="the layer table of one model")
    s.add_argument("name", help="a model name (see `resnets models`)")
    s.add_argument("--input-size", type=int, default=None, help="image side in pixels (default: native)")
    s.add_argument("--in-chans", type=int, default=3, help="input channels")
    s.add_argument("--num-classes", type=int, default=None, help="classes of the head (default: the model's)")
    s.set_defaults(func=cmd_summary)


def cmd_models(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        raise ValueError(f"no model matches {args.pattern!r}; try `resnets models` for the full list")
    macs_head = "" if args.no_flops else f" {'GMACs':>8}"
    print(f"{'model':<20} {'family':<9} {'params':>12}{macs_head}  {'input':<10} description")
    for name in names:
        entry = get_entry(name)
        fig = figures_of(name)  # stored figures (counted on the spot for a model the table lacks)
        macs = "" if args.no_flops else f" {fig.macs / 1e9:8.3f}"
        size = fig.input_size
        print(f"{name:<20} {entry.family:<9} {fig.params:>12,}{macs}  {size[1]}x{size[2]:<7} {entry.description}")
    if not args.no_flops:
        print("GMACs: multiply-adds per image at the native input size (torch.utils.flop_counter FLOPs / 2).")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    options: dict[str, object] = {"in_chans": args.in_chans}
    if args.num_classes is not None:
        options["num_classes"] = args.num_classes
    model = create_model(args.name, **options)
    size = model.default_input_size if args.input_size is None else (args.in_chans, args.input_size, args.input_size)
    rows = layer_table(model, input_size=size)
    print(f"{args.name}: {get_entry(args.name).description}; input {size}")
    print(f"{'part':<8} {'unit':<18} {'units':>5} {'weighted':>8}  {'output (N, C, H, W)':<22} {'params':>12}")
    for r in rows:
        print(f"{r.name:<8} {r.kind:<18} {r.units or '':>5} {r.weighted:>8}  {str((1,) + r.out_shape[1:]):<22} {r.params:>12,}")
    parts = " + ".join(str(r.weighted) for r in rows)
    print(f"weighted layers: {parts} = {model.weighted_layers()}")
    print(f"parameters: {count_parameters(model):,}; multiply-adds: {count_macs(model, size) / 1e9:.3f} G")
    return 0
