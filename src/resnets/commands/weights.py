"""`resnets weights [PATTERN]`, `resnets weights download NAME…` and `resnets convert SRC DST`."""

from __future__ import annotations

import argparse
import sys

from resnets.cli import CLIError


def register(subparsers: argparse._SubParsersAction) -> None:
    w = subparsers.add_parser(
        "weights", help="published weights: list them (and what is cached), or download some",
        description="`resnets weights [PATTERN]` lists the published weights and whether each is cached; "
                    "`resnets weights download NAME...` fetches and verifies them (NAME as resnet50.IMAGENET1K_V2).",
    )
    w.add_argument("words", nargs="*", metavar="PATTERN | download NAME...")
    w.set_defaults(func=cmd_weights)

    c = subparsers.add_parser("convert", help="convert a foreign checkpoint into a file every command reads")
    c.add_argument("src", help="a torchvision .pth, akamaster .th or chenyaofo .pt state dict")
    c.add_argument("dst", help="the .safetensors file to write")
    c.add_argument("--from", dest="from_format", default=None,
                   help="the source format, when it cannot be told from the keys (torchvision, akamaster, chenyaofo)")
    c.set_defaults(func=cmd_convert)


def cmd_weights(args: argparse.Namespace) -> int:
    words = list(args.words)
    if words and words[0] == "download":
        return _download(words[1:])
    if len(words) > 1:
        raise CLIError("give one PATTERN (e.g. 'resnet50*'), or `download NAME...`")
    return _list(words[0] if words else "*")


def _list(pattern: str) -> int:
    from resnets.models.hub import cached_file, torch_hub_dir, weights_dir
    from resnets.models.pretrained import default_tag, list_weights

    entries = list_weights(pattern)
    if not entries:
        raise CLIError(f"no published weights match {pattern!r}; `resnets weights` lists them all")
    print(f"{'name':<34} {'acc@1':>6} {'acc@5':>6}  {'eval':<8} {'source':<12} cached")
    for e in entries:
        path = cached_file(e.filename)
        where = "-" if path is None else str(path)
        name = e.name + (" (DEFAULT)" if default_tag(e.model) == e.tag else "")
        print(f"{name:<34} {e.top1:>6.2f} {e.top5:>6.2f}  {e.resize}/{e.crop:<4} {e.source:<12} {where}")
    print(f"accuracy: published, ImageNet-1K validation, single {entries[0].crop}px centre crop; "
          f"eval: resize/crop. Downloads go to {weights_dir()}; torch's {torch_hub_dir()} is reused.")
    return 0


def _download(names: list[str]) -> int:
    from resnets.io.download import DownloadError
    from resnets.models.hub import fetch
    from resnets.models.pretrained import find_weights

    if not names:
        raise CLIError("name the weights to download, e.g. `resnets weights download resnet50.IMAGENET1K_V2`")
    entries = []
    for name in names:  # every name checked before anything is fetched
        entry = find_weights(name)
        if entry is None:
            raise CLIError(f"{name!r} names no published weights; `resnets weights` lists them (MODEL.TAG)")
        entries.append(entry)
    failed = 0
    for entry in entries:
        try:
            path = fetch(entry.url, progress=sys.stdout.isatty())
        except DownloadError as exc:
            failed += 1
            print(f"resnets weights: error: {exc}", file=sys.stderr)
            continue
        print(f"{entry.name}: {path}")
    if failed == len(entries):
        return 2
    return 1 if failed else 0


def cmd_convert(args: argparse.Namespace) -> int:
    from resnets.train.convert import VERIFIED, convert_checkpoint

    result = convert_checkpoint(args.src, args.dst, from_format=args.from_format)
    conv, norm = result.converted, result.normalisation
    opts = ", ".join(f"{k}={v}" for k, v in conv.options.items())
    print(f"{args.src}: {conv.format.name} format -> {conv.model} ({opts})")
    for note in result.notes:
        print(f"note: {note}")
    verified = "verified" if conv.format.name in VERIFIED else "NOT verified"
    print(f"wrote {result.path}: inputs {norm.image_size}px, mean {list(norm.mean)}, std {list(norm.std)} "
          f"(the source's own evaluation); format {verified} against its published definition")
    return 0
