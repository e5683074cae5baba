"""Where datasets and caches live on the user's machine."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "RESNETS_DATA"
CACHE_ENV = "RESNETS_CACHE"


def _cache_home() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg else Path.home() / ".cache"


def user_data_dir(name: str) -> Path:
    """``$RESNETS_DATA/<name>``, else ``~/.cache/resnets/data/<name>``."""
    base = os.environ.get(DATA_ENV)
    return (Path(base) if base else _cache_home() / "resnets" / "data") / name


def user_cache_dir() -> Path:
    """``$RESNETS_CACHE``, else ``~/.cache/resnets/cache`` (decoded image caches)."""
    base = os.environ.get(CACHE_ENV)
    return Path(base) if base else _cache_home() / "resnets" / "cache"


def shown(path: str | os.PathLike[str]) -> str:
    """A path as printable text: bytes that are not UTF-8 (any name Linux allows) escaped
    as ``\\xff`` instead of failing when written to a UTF-8 terminal or log."""
    text = os.fsdecode(path)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name decodes to
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
