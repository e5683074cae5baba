"""The `resnets` command line: a thin dispatcher.

Each command group lives in ``resnets.commands.<module>`` and exposes
``register(subparsers)``, which adds its sub-commands and sets ``func`` on each
parser. ``func(args)`` returns the process exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

# One entry per command module; each adds its own sub-commands.
COMMAND_MODULES: tuple[str, ...] = (
    "resnets.commands.models",
    "resnets.commands.train",
    "resnets.commands.deploy",
    "resnets.commands.quantize",
    "resnets.commands.bench",
    "resnets.commands.studies",
    "resnets.commands.weights",
)


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2, no traceback."""


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` shows each option's default, unless it has none (None, False) or its help
    already says it; an option may carry ``default_help``, a function that says it (called only
    when the help is shown)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        lazy = getattr(action, "default_help", None)  # a default known only by asking (e.g. a study's recipe)
        if callable(lazy):
            return f"{text} {lazy()}"
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS or "default" in text
                or text == argparse.SUPPRESS or not action.option_strings and action.nargs in ("*", "+")):
            return action.help
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {shown})" if text else f"default: {shown}"


def _with_defaults(parser: argparse.ArgumentParser) -> None:
    """The defaults formatter for ``parser`` and every sub-command under it."""
    parser.formatter_class = DefaultsHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _with_defaults(sub)


def build_parser() -> argparse.ArgumentParser:
    from resnets import __version__

    parser = argparse.ArgumentParser(
        prog="resnets",
        description="Residual networks: models, training, studies, export.",
    )
    parser.add_argument("--version", action="version", version=f"resnets {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    _with_defaults(parser)
    return parser


class _NoteHandler(logging.Handler):
    """The library's notes (``logging`` INFO and up under ``resnets``, e.g. the decode cache) as
    lines on the current stderr, named for the command."""

    def __init__(self, command: str) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter(f"resnets {command}: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr, flush=True)


def _show_notes(command: str) -> None:
    logger = logging.getLogger("resnets")
    for handler in [h for h in logger.handlers if isinstance(h, _NoteHandler)]:  # main() called again
        logger.removeHandler(handler)
    logger.addHandler(_NoteHandler(command))
    logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    from resnets.data.paths import shown
    from resnets.io.download import DownloadError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value overrides after an option (`train --quiet optim.lr=0.1`) are overrides too
        if getattr(args, "overrides", None) is None or any(a.startswith("-") or "=" not in a for a in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    _show_notes(args.command)
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, KeyError, FileNotFoundError, DownloadError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"resnets {args.command}: error: {shown(str(message))}", file=sys.stderr)  # any file name prints
        return 2
    except BrokenPipeError:  # the reader went away (`resnets models | head`): stop quietly, as a Unix tool does
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 128 + 13  # killed by SIGPIPE, as the shell reports it
    except OSError as exc:  # the machine refused (permissions, a read-only or full disk): the user's to fix
        where = f" {shown(exc.filename)}" if exc.filename else ""
        print(f"resnets {args.command}: error: cannot use{where}: {exc.strerror or shown(str(exc))}; "
              "check its permissions and free space, or choose another place", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        lead = "\n" if sys.stderr.isatty() else ""  # a progress bar may hold the cursor
        print(f"{lead}resnets {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug in resnets: the traceback is for its report
        traceback.print_exc()
        print(f"resnets {args.command}: internal error (a bug in resnets, not in your input); "
              "please report it with the traceback above", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
