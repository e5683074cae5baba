"""The recipes shipped with the package (``resnets/recipes/*.yaml``), found by name.

``--config demo`` and ``--config cifar10_he2015`` work from any directory and after a
``pip install``; a path to a YAML file of one's own works as before (a file that exists wins
over a shipped recipe of the same name).
"""

from __future__ import annotations

from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"
SUFFIX = ".yaml"


def shipped_recipes() -> dict[str, Path]:
    """Name -> file of every shipped recipe, sorted by name."""
    return {p.name[: -len(SUFFIX)]: p for p in sorted(RECIPES_DIR.glob(f"*{SUFFIX}"))}


def describe(path: Path) -> str:
    """A recipe's first comment line (what it is), or "" when it starts with no comment."""
    first = path.read_text(encoding="utf-8").splitlines()[:1]
    return first[0].lstrip("#").strip().rstrip(":,") if first and first[0].startswith("#") else ""


def find_recipe(config: str | Path) -> Path:
    """The YAML file ``config`` names: an existing file, else a shipped recipe by name
    (``demo``, ``demo.yaml`` or ``configs/demo.yaml``); else a FileNotFoundError listing them."""
    path = Path(config)
    if path.is_file():
        return path
    name = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.name
    shipped = shipped_recipes()
    if name in shipped and (path.parent == Path(".") or path.parent.name == "configs"):
        return shipped[name]
    raise FileNotFoundError(
        f"config {config} not found: give a YAML file or a shipped recipe by name ({', '.join(shipped)}; "
        "`resnets train --list-configs` lists them), e.g. --config demo"
    )
