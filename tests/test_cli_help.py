"""Every command's --help shows the defaults of its options."""

from __future__ import annotations

import argparse

import pytest

from resnets.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, name: str = "resnets") -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found += _parsers(sub, f"{name} {sub_name}")
    return found


PARSERS = _parsers(build_parser())


@pytest.mark.parametrize("name,parser", PARSERS, ids=[n for n, _ in PARSERS])
def test_help_shows_every_default(name: str, parser: argparse.ArgumentParser) -> None:
    text = " ".join(parser.format_help().split())  # wrapped lines joined
    for action in parser._actions:
        if not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
            continue
        assert action.help, f"{name} {action.option_strings[0]} has a default ({action.default!r}) but no help"
        default = ",".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) else str(action.default)
        assert "default" in action.help or f"(default: {default})" in text, (name, action.option_strings)


def test_the_options_named_in_the_issue() -> None:
    helps = {name: " ".join(p.format_help().split()) for name, p in PARSERS}
    for option in ("--warmup WARMUP untimed steps per side first (default: 3)", "(default: 5)", "(default: 10)",
                   "--batch BATCH images per step (default: 32)"):
        assert option in helps["resnets bench"], option
    assert "labels per image, most likely first (default: 5)" in helps["resnets predict"]
    assert "the split to evaluate on (default: test)" in helps["resnets eval"]
    assert "training iterations per network (default: 800 on a CPU, 64000 on CUDA)" in helps["resnets study degradation"]
    assert "(default: 8 20 56 on a CPU, 20 32 44 56 110 on CUDA)" in helps["resnets study degradation"]


def test_building_the_parser_imports_no_study_code() -> None:
    """The studies' defaults are read only when their help is shown: every command starts without
    importing the studies (and matplotlib, which wants a writable config directory)."""
    import subprocess
    import sys

    code = ("import sys, resnets.cli; resnets.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('matplotlib', 'resnets.studies'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
